"""FSDP2 (fully_shard) on two CPU processes against DDP on two CPU processes (slow).

Both runs take the same path: 2 steps with a checkpoint after each, then a resume to step 3.
Same seeds, same prompt shards, same sampling streams per rank, and the same math: FSDP
all-gathers the parameters, so every forward sees the weights DDP sees; only the order of the
gradient sums differs (reduce-scatter vs all-reduce), a rounding difference that Adam's
normalisation can blow up to about lr on near-zero gradients. Hence the tolerances:
  * rewards and sampled completions: equal (the rounding differences never flipped a token);
  * logged losses, KL and grad norms: relative 1e-4;
  * final weights: absolute 1e-4 (lr is 1e-3; a real divergence moves weights by ~lr per step).
The FSDP checkpoint holds whole tensors (not one rank's shard), its resume continues the run,
and final/ loads as a plain Hugging Face folder. The driver also checks that generation stays
in step across ranks whose completions end at different lengths (transformers' synced_gpus).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from conftest import metric_rows, write_digit_task
from test_distributed import CONFIGS, _free_port, _launch

# After training, each rank generates a different number of tokens without being told to stay in
# step: on a sharded model a rank that stopped calling forward would leave the other waiting
# forever (the test's timeout), unless generate() runs in synced_gpus mode.
DRIVER = """
import sys
import torch
import mathrl.rollout as R
import mathrl.train as T
# Both runs sample with transformers' generate(), which a sharded model must use: mathrl's own
# decode loops (mathrl.engine.decoder, rollout.decode) draw their samples differently, so a DDP run on
# them could not be compared with an FSDP run token for token.
R.decoder_for = lambda model: None
R.decode = R.synced_generate

finish = T.finish_run
def finish_then_generate_uneven(state):
    out = finish(state)
    model, rank = state.policy_for_generation(), state.accelerator.process_index
    ids = torch.tensor([[1, 2, 3]], device=state.device)
    n = 2 + 4 * rank
    with torch.no_grad():
        got = model.generate(input_ids=ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    assert got.shape[1] == 3 + n, got.shape
    return out
T.finish_run = finish_then_generate_uneven
from mathrl.cli import main
sys.argv = ["mathrl"] + sys.argv[1:]
main()
"""

# float32: the tolerances below are float32 rounding; under bf16 autocast (the CPU default) DDP's
# prefix-shared log-prob pass and FSDP's plain one differ by bf16 rounding (k1 drift 1.6% apart).
SETS = {"dtype": "float32", "prompts_per_step": 4, "group_size": 4, "max_new_tokens": 8, "eval_limit": 2,
        "eval_every": 1,
        "lr": "1e-3", "samples_every": 1, "format_reward": 0.5, "threads": 1, "checkpoint_every": 1,
        "keep_checkpoints": 5}


def _train_then_resume(tmp: Path, config: str, out: Path) -> None:
    sets = [a for k, v in SETS.items() for a in ("--set", f"{k}={v}")]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / config)]
    _launch([*launch, "--main_process_port", _free_port(), "driver.py", "run", "--task", "digit", "--tasks-dir",
             str(tmp), "--model", "tiny", "--max-steps", "2", "--output", str(out), "--quiet", *sets], tmp)
    _launch([*launch, "--main_process_port", _free_port(), "driver.py", "run", "--resume", str(out),
             "--max-steps", "3", "--quiet"], tmp)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    return {k: v.detach() for k, v in AutoModelForCausalLM.from_pretrained(folder).named_parameters()}


@pytest.mark.slow
def test_fsdp_on_two_cpu_processes_matches_ddp_and_resumes(tmp_path):
    write_digit_task(tmp_path)
    (tmp_path / "driver.py").write_text(DRIVER)
    ddp, fsdp = tmp_path / "ddp", tmp_path / "fsdp"
    _train_then_resume(tmp_path, "cpu_2proc.yaml", ddp)
    _train_then_resume(tmp_path, "fsdp_cpu_2proc.yaml", fsdp)

    # the FSDP run really was sharded, and resumed to step 3 without repeating a step
    record = json.loads((fsdp / "config.json").read_text())
    assert record["resolved"]["world_size"] == 2
    rows_ddp, rows_fsdp = metric_rows(ddp), metric_rows(fsdp)
    assert [r["step"] for r in rows_fsdp if "reward/mean" in r] == [1, 2, 3]
    assert len(rows_fsdp) == len(rows_ddp)
    # ---- the same run: equal rewards and samples, losses within rounding ------------------------
    for a, b in zip(rows_ddp, rows_fsdp):
        assert sorted(a) == sorted(b)
        for key in a:
            if key.startswith("time/") or a[key] is None or isinstance(a[key], bool):
                continue
            if key.startswith(("reward/", "rollout/", "tokens/")) or (key.startswith("eval/") and "/kl_" not in key):
                assert b[key] == a[key], (a["step"], key)
            else:  # k1 KL drift is a signed mean of near-zero terms: an absolute tolerance only
                assert math.isclose(b[key], a[key], rel_tol=1e-4, abs_tol=1e-6), (a["step"], key, a[key], b[key])
    for step in (1, 2, 3):
        name = f"train-step-{step:06d}.jsonl"
        assert (fsdp / "samples" / name).read_text() == (ddp / "samples" / name).read_text()
    # ---- final/ is a plain HF folder, and its weights are DDP's within rounding -----------------
    w_ddp, w_fsdp = _weights(ddp / "final"), _weights(fsdp / "final")
    assert sorted(w_ddp) == sorted(w_fsdp)
    worst = max(float((w_ddp[k] - w_fsdp[k]).abs().max()) for k in w_ddp)
    assert worst < 1e-4, worst
    moved = max(float((w_fsdp[k] - v).abs().max()) for k, v in _initial_tiny().items())
    assert moved > 1e-3, moved  # training moved the weights far more than the tolerance
    # ---- the FSDP checkpoint holds whole tensors: weights and Adam moments ---------------------
    saved = torch.load(fsdp / "checkpoints" / "step-0000002" / "state.pt", map_location="cpu", weights_only=False)
    reference = torch.load(ddp / "checkpoints" / "step-0000002" / "state.pt", map_location="cpu", weights_only=False)
    assert saved["model"].keys() == reference["model"].keys()
    for k, v in reference["model"].items():
        assert saved["model"][k].shape == v.shape and torch.allclose(saved["model"][k], v, atol=1e-4), k
    moments = saved["optimizer"]["state"]
    assert {k: tuple(moments[k]["exp_avg"].shape) for k in moments} == {
        k: tuple(v.shape) for k, v in reference["model"].items() if k in moments}
    assert len(moments) == len(w_fsdp)  # every trainable parameter has its moments


def test_a_sharded_model_makes_the_same_number_of_forward_calls_whatever_its_completions(tiny):
    """Under FSDP each forward call all-gathers the shards: all ranks must make equally many.
    The prefix-shared log-prob pass makes 1 or 2 per micro-batch depending on the completions'
    lengths, so a model marked as sharded gets one plain forward, with the same numbers."""
    import copy

    from mathrl.logprobs import completion_logprobs
    from mathrl.rollout import hf_generate
    from mathrl.types import Problem

    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    problems = [Problem(id=str(i), question=f"Say {i}", gold=str(i), messages=[{"role": "user", "content": f"Say {i}"}])
                for i in range(2)]
    torch.manual_seed(0)
    batch = hf_generate(model, tokenizer, problems, 4, 6)  # 2 prompts x 4 samples: prefixes shared
    calls: list[int] = []
    model.register_forward_pre_hook(lambda module, args: calls.append(1))
    with torch.no_grad():
        shared = completion_logprobs(model, batch, micro_batch_size=8)["logp"]
        assert len(calls) == 2  # the prompts once, then the completions on their cache
        model._is_fsdp_managed_module = True  # what distributed.mark_sharded_for_generation sets
        plain = completion_logprobs(model, batch, micro_batch_size=8)["logp"]
    assert len(calls) == 3  # one more: a single plain forward
    assert torch.allclose(plain, shared, atol=1e-5)


def _initial_tiny() -> dict[str, torch.Tensor]:
    from mathrl.models import load_model

    return {k: v.detach() for k, v in load_model("tiny", seed=0)[0].named_parameters()}
