"""Several processes: prompt sharding, the shipped accelerate configs, and (slow) a real
2-process DDP run on CPU (gloo) compared with a 1-process run of the same global batch.

What a 2-rank x B/2 run and a 1-rank x B run share exactly, and what they do not:
  * the same B prompts each step (the sampler shards one permutation), hence the same prompt
    token counts, and the same step-0 greedy eval (same initial weights, no sampling);
  * not the sampled completions: each rank samples with its own random stream, so rewards,
    losses and the trained weights agree only in distribution, not in value.
Within the 2-rank run, the parameters must be bitwise identical on both ranks after training
(DDP all-reduced every gradient), and the logged reward statistics must be those of all
B x G rows (the samples file, gathered from both ranks), not of the main rank's half.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from conftest import REPO, metric_rows, write_digit_task
from mathrl.config import ConfigError, build_config
from mathrl.distributed import check_shardable
from mathrl.sampler import PromptSampler

CONFIGS = REPO / "accelerate_configs"


# ---- prompt sharding --------------------------------------------------------------------------
def test_two_ranks_draw_disjoint_prompts_that_together_are_the_single_process_draw():
    single = PromptSampler(n=20, seed=3)
    ranks = [PromptSampler(n=20, seed=3, rank=r, world=2) for r in range(2)]
    for _ in range(6):  # 6 steps x 4 prompts: crosses an epoch boundary (n = 20)
        want = single.next_indices(4)
        got = [r.next_indices(2) for r in ranks]
        assert not set(got[0]) & set(got[1])
        assert sorted(got[0] + got[1]) == sorted(want)


def test_uneven_draws_stay_disjoint_within_an_epoch_and_resume_at_each_rank_offset():
    a, b = PromptSampler(n=40, seed=0, rank=0, world=2), PromptSampler(n=40, seed=0, rank=1, world=2)
    drawn_a, drawn_b = a.next_indices(7), b.next_indices(3)  # DAPO resampling draws unevenly
    assert not set(drawn_a) & set(drawn_b)
    saved = a.state_dict()  # only the main process writes checkpoints
    resumed = [PromptSampler(n=40, seed=0, rank=r, world=2) for r in range(2)]
    for sampler in resumed:
        sampler.load_state_dict(saved)
    nxt = [s.next_indices(5) for s in resumed]
    assert nxt[0] == a.next_indices(5)
    assert not set(nxt[0]) & set(nxt[1]) and not set(nxt[1]) & set(drawn_a)


def test_batches_that_cannot_be_split_into_whole_groups_per_rank_are_refused():
    with pytest.raises(ConfigError, match="multiple of the number of processes"):
        check_shardable(build_config("grpo", None, {"prompts_per_step": "3"}), 2, 100)
    with pytest.raises(ConfigError, match="minibatches"):
        check_shardable(build_config("grpo", None, {"prompts_per_step": "4", "group_size": "2",
                                                    "minibatches": "8"}), 2, 100)
    with pytest.raises(ConfigError, match="cannot be sharded"):
        check_shardable(build_config("grpo", None, {"prompts_per_step": "4"}), 4, 3)
    check_shardable(build_config("grpo", None, {"prompts_per_step": "4", "minibatches": "2"}), 2, 100)


# ---- the shipped accelerate configs -----------------------------------------------------------
EXPECTED = {"single_gpu": ("NO", 1), "multi_gpu_ddp": ("MULTI_GPU", 2), "cpu_2proc": ("MULTI_GPU", 2),
            "fsdp": ("FSDP", 2), "fsdp_cpu_2proc": ("FSDP", 2), "deepspeed_zero2": ("DEEPSPEED", 2),
            "deepspeed_zero3": ("DEEPSPEED", 2)}


def launch_env(path: Path):
    """The parsed launch arguments and the environment `accelerate launch --config_file path`
    gives the training processes (accelerate's own launch code, up to starting them)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args, defaults, _ = _validate_launch_command(launch_command_parser().parse_args(
        ["--config_file", str(path), "train.py"]))
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        return args, prepare_deepspeed_cmd_env(args)[1]
    return args, prepare_multi_gpu_env(args) if args.multi_gpu or args.use_fsdp else {}


def test_every_config_is_shipped_and_parses_as_an_accelerate_config():
    from accelerate.commands.config.config_args import ClusterConfig

    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)
    for name, (kind, n) in EXPECTED.items():
        config = ClusterConfig.from_yaml_file(CONFIGS / f"{name}.yaml")  # rejects unknown keys
        assert (config.distributed_type.value, config.num_processes) == (kind, n), name


def test_fsdp_and_deepspeed_configs_build_their_plugins():
    from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin

    for name in ("fsdp", "fsdp_cpu_2proc"):
        _, env = launch_env(CONFIGS / f"{name}.yaml")
        with mock.patch.dict(os.environ, env):
            fsdp = FullyShardedDataParallelPlugin()
        assert fsdp.fsdp_version == 2 and fsdp.reshard_after_forward is True and not fsdp.cpu_ram_efficient_loading
    for stage in (2, 3):
        _, env = launch_env(CONFIGS / f"deepspeed_zero{stage}.yaml")
        with mock.patch.dict(os.environ, env):
            ds = DeepSpeedPlugin()
        assert ds.deepspeed_config["zero_optimization"]["stage"] == stage
        assert ds.deepspeed_config["gradient_clipping"] == 1.0


def test_what_mathrl_cannot_run_sharded_is_refused_before_anything_is_built():
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from mathrl.distributed import check_sharding_supported

    fsdp = SimpleNamespace(distributed_type=DistributedType.FSDP)
    ddp = SimpleNamespace(distributed_type=DistributedType.MULTI_GPU)
    with pytest.raises(ConfigError, match="LoRA"):
        check_sharding_supported(fsdp, lora=True, value_head=False, rollout="hf")
    with pytest.raises(ConfigError, match="value head"):
        check_sharding_supported(fsdp, lora=False, value_head=True, rollout="hf")
    with pytest.raises(ConfigError, match="DeepSpeed"):
        check_sharding_supported(SimpleNamespace(distributed_type=DistributedType.DEEPSPEED), False, False, "hf")
    check_sharding_supported(fsdp, lora=False, value_head=False, rollout="hf")
    check_sharding_supported(ddp, lora=True, value_head=True, rollout="vllm")


def test_the_cpu_config_starts_two_processes_through_torchrun():
    # accelerate's MULTI_CPU type would take the single-process launcher (it needs mpirun)
    args, _ = launch_env(CONFIGS / "cpu_2proc.yaml")
    assert args.multi_gpu and not args.use_fsdp and args.num_processes == 2


# ---- slow: a real 2-process run -----------------------------------------------------------------
# Runs the real CLI (mathrl.cli.main) and, at the end of training, writes a hash of this
# rank's parameters to <run>/param-hash-<rank>.txt.
DRIVER = """
import hashlib, os, sys
from pathlib import Path
import mathrl.train as T

finish = T.finish_run
def finish_and_hash(state):
    model = state.accelerator.unwrap_model(state.model)
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        h.update(name.encode()); h.update(p.detach().cpu().numpy().tobytes())
    state.run.path.mkdir(parents=True, exist_ok=True)
    (state.run.path / f"param-hash-{state.accelerator.process_index}.txt").write_text(h.hexdigest())
    return finish(state)
T.finish_run = finish_and_hash
from mathrl.cli import main
sys.argv = ["mathrl"] + sys.argv[1:]
main()
"""

STEPS, B, G = 3, 4, 4


def _run_args(tmp: Path, out: Path) -> list[str]:
    sets = {"prompts_per_step": B, "group_size": G, "max_new_tokens": 8, "eval_limit": 4, "eval_every": 0,
            "lr": "1e-3", "samples_every": 1, "format_reward": 0.5, "threads": 1, "checkpoint_every": 2}
    return ["run", "--task", "digit", "--tasks-dir", str(tmp), "--model", "tiny", "--max-steps", str(STEPS),
            "--output", str(out), "--quiet"] + [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]


def _free_port() -> str:
    with socket.socket() as s:  # other jobs on the machine may hold torchrun's default 29500
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _launch(cmd: list[str], tmp: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _samples(run: Path, step: int) -> list[dict]:
    return [json.loads(x) for x in (run / "samples" / f"train-step-{step:06d}.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_process_ddp_run_matches_one_process_where_it_must(tmp_path):
    write_digit_task(tmp_path)
    (tmp_path / "driver.py").write_text(DRIVER)
    one, two = tmp_path / "one", tmp_path / "two"
    _launch([sys.executable, "driver.py", *_run_args(tmp_path, one)], tmp_path)
    _launch([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "cpu_2proc.yaml"),
             "--main_process_port", _free_port(), "driver.py", *_run_args(tmp_path, two)], tmp_path)

    # gradients were synchronised: both ranks end with bitwise identical parameters
    hashes = [(two / f"param-hash-{r}.txt").read_text() for r in range(2)]
    assert hashes[0] == hashes[1]
    assert json.loads((two / "config.json").read_text())["resolved"]["world_size"] == 2
    # logs are written once: one row per step (plus the step-0 and final evals), no duplicates
    rows_one, rows_two = metric_rows(one), metric_rows(two)
    assert [r["step"] for r in rows_two if "reward/mean" in r] == list(range(1, STEPS + 1))
    assert len(rows_two) == len(rows_one) == STEPS + 2
    steps_one = [r for r in rows_one if "reward/mean" in r]
    steps_two = [r for r in rows_two if "reward/mean" in r]
    assert any(r["optim/grad_norm"] > 0 for r in steps_two)
    for step, (a, b) in enumerate(zip(steps_one, steps_two), start=1):
        samples_one, samples_two = _samples(one, step), _samples(two, step)
        # the global batch: B prompts x G samples, gathered from both ranks ...
        assert len(samples_two) == B * G
        # ... the same B prompts as the 1-process run, so the same prompt tokens
        assert sorted(s["prompt"] for s in samples_two) == sorted(s["prompt"] for s in samples_one)
        assert b["tokens/prompt"] == a["tokens/prompt"]
        # metrics are of all B x G rows, not of the main rank's half
        assert b["reward/mean"] == pytest.approx(sum(s["reward"] for s in samples_two) / (B * G))
        assert b["reward/correct_frac"] == pytest.approx(sum(bool(s["correct"]) for s in samples_two) / (B * G))
        assert b["tokens/generated"] == pytest.approx(b["rollout/len_mean"] * B * G)
        assert b["tokens/trained"] == b["tokens/prompt"] + b["tokens/generated"]
    assert steps_two[-1]["flops/cumulative"] == pytest.approx(sum(r["flops/step"] for r in steps_two))
    # identical initial weights, greedy decoding: the step-0 evals agree exactly
    eval0 = [next(r for r in rows if r["step"] == 0) for rows in (rows_one, rows_two)]
    assert eval0[0] == eval0[1]


@pytest.mark.slow
def test_cpu_launch_that_starts_one_process_says_so(tmp_path):
    """`accelerate launch --cpu --num_processes 2` starts one process (no mpirun): warn."""
    write_digit_task(tmp_path)
    args = _run_args(tmp_path, tmp_path / "run")
    args[args.index("--max-steps") + 1] = "1"
    done = _launch([sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
                    "--main_process_port", _free_port(), "-m", "mathrl", *args], tmp_path)
    assert "accelerate started a single process" in done.stderr
