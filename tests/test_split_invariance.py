"""Split invariance of the update (issue 17): how a batch is cut into micro-batches (gradient
accumulation), or shared between processes, must not change the loss nor the gradient.

A bug of this kind is silent: a loss normalised per micro-batch changes the effective learning
rate with `micro_batch_size` (verl #6957, OpenRLHF #1249, ms-swift #10117). Here every
algorithm family (GRPO, Dr. GRPO, PPO with its value head, SFT) in every aggregation mode runs
`policy_update` on one batch of the tiny model, split in several ways, with an optimizer that
records each step's gradient instead of stepping (so every step sees the same weights). Each
step's gradient and the reported loss terms must equal those of a reference computed here, in
one piece, straight from the formulas of loss.py over exactly the rows of that step:

  * `micro_batch_size` 1, 3 (uneven: 3 + 3 + 2) and 8 on one minibatch of 8 rows;
  * 2 minibatches (one optimizer step each) x micro-batches of 1 and 4: each step's gradient is
    that of its own 4 rows (the minibatch permutation comes from the same seeded generator);
  * 2 processes (DDP over gloo, slow) with 4 rows each: the all-reduced gradient is that of
    all 8 rows, though the two ranks hold different numbers of tokens.

Agreement, relative to the largest gradient entry: float64 measured <= 8.9e-16 (asserted: 1e-10);
float32 measured <= 3.2e-7 (asserted: 1e-5). float32 differs at all because a micro-batch is
padded to its own longest completion, so the matmuls have other shapes and round differently.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import write_digit_task
from mathrl.logprobs import forward_completion
from mathrl.loss import AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, masked_mean, value_loss
from mathrl.models import build_tiny
from mathrl.rollout import teacher_forced_batch
from mathrl.tasks import get_task
from mathrl.update import UpdateInputs, UpdateParams, policy_update
from mathrl.value import ValueHead

MODES = ["seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"]
FAMILIES = ["grpo", "dr_grpo", "ppo", "sft"]
# completions of very different lengths, so that token- and sequence-level weights differ
TARGETS = ["7", "12 and 13", "x", "the answer is 4", "99", "a b c d e f g h i", "0", "1 2"]
MAX_LEN = 20
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def params_for(family: str, mode: str, micro: int, minibatches: int) -> UpdateParams:
    """What run_state builds from each family's Recipe (SFT: -A log p at A = 1; GRPO: k3 KL in
    the loss; PPO: KL in the reward, an entropy bonus and the value loss)."""
    return UpdateParams(
        policy_loss=POLICY_LOSSES["reinforce" if family == "sft" else "clip"], temperature=0.7, clip_eps_low=0.2,
        clip_eps_high=0.28, kl=KL_ESTIMATORS["k3"] if family in ("grpo", "dr_grpo") else None, kl_coef=0.05,
        kl_grad_at_reference=False, loss_agg=AGGREGATIONS[mode], token_weighted=mode == "token_mean",
        max_new_tokens=MAX_LEN,
        entropy_coef=0.01 if family == "ppo" else 0.0, vf_coef=0.5, value_clip_eps=0.2,
        ppo_epochs=1, minibatches=minibatches, micro_batch_size=micro, max_grad_norm=1e9)


class RecordingOptimizer:
    """Records the gradient of every step and leaves the weights as they are."""

    def __init__(self, params):
        self.params = list(params)
        self.param_groups = [{"params": self.params}]
        self.steps: list[torch.Tensor] = []

    def step(self):
        self.steps.append(torch.cat([p.grad.flatten() for p in self.params]).detach().clone())

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None


class FixedScheduler:
    def step(self):
        pass

    def get_last_lr(self):
        return [0.0]


def make_problem(dtype: torch.dtype, family: str, tmp: Path, rows: slice = slice(None)):
    """Tiny model (+ value head for PPO), a teacher-forced batch and random update inputs."""
    torch.manual_seed(0)
    model, tokenizer = build_tiny(seed=0, dtype=dtype)
    head = ValueHead(model.config.hidden_size).to(dtype) if family == "ppo" else None
    if head is not None:  # zero init would hide the value loss' gradient on the head's weights
        torch.nn.init.normal_(head.linear.weight, std=0.1)
    tmp.mkdir(parents=True, exist_ok=True)
    task = get_task("digit", tasks_dir=write_digit_task(tmp))
    problems = task.load("train", seed=None)[: len(TARGETS)]
    batch = teacher_forced_batch(tokenizer, problems, TARGETS, "cpu")
    g = torch.Generator().manual_seed(1)
    n, T = batch.completion_mask.shape
    rand = lambda scale: (torch.randn(n, T, generator=g) * scale).to(dtype)  # noqa: E731
    with torch.no_grad():
        logp = forward_completion(model, batch.input_ids, batch.attention_mask, batch.prompt_len, 0.7)["logp"]
    adv = torch.ones(n, T, dtype=dtype) if family == "sft" else rand(1.0)  # SFT: A = 1 (train.py)
    inputs = UpdateInputs(advantages=adv, mask=batch.completion_mask.to(dtype),
                          old_logp=(logp + rand(0.3)).to(dtype), ref_logp=(logp + rand(0.5)).to(dtype))
    if family == "ppo":
        inputs.old_values, inputs.returns = rand(0.5), rand(1.0)
    return model, head, batch, inputs


def reference(model, head, batch, inputs: UpdateInputs, hp: UpdateParams, rows: list[int]):
    """Gradient and loss terms of the rows `rows` in one piece, straight from loss.py."""
    idx = torch.tensor(rows)
    out = forward_completion(model, batch.input_ids[idx], batch.attention_mask[idx], batch.prompt_len,
                             hp.temperature, with_entropy=hp.entropy_coef > 0, value_head=head)
    logp, mask = out["logp"], inputs.mask[idx]
    per_token, low, high = hp.policy_loss(logp, inputs.old_logp[idx], inputs.advantages[idx], mask,
                                          hp.clip_eps_low, hp.clip_eps_high)
    # the loss terms in the aggregation mode, the diagnostics as token means
    terms = {"loss/policy": hp.loss_agg(per_token, mask, hp.max_new_tokens),
             "loss/clip_frac": masked_mean((low | high).to(logp.dtype), mask)}
    if hp.kl is not None:
        kl_tok = hp.kl(logp, inputs.ref_logp[idx])
        per_token = per_token + hp.kl_coef * kl_tok
        terms["loss/kl"] = hp.loss_agg(kl_tok, mask, hp.max_new_tokens)
        terms["kl/mean"] = masked_mean(kl_tok, mask)
    if hp.entropy_coef:
        per_token = per_token - hp.entropy_coef * out["entropy"]
        terms["entropy/mean"] = masked_mean(out["entropy"], mask)
    loss = hp.loss_agg(per_token, mask, hp.max_new_tokens)
    if head is not None:  # the value loss is a token mean in every mode
        terms["loss/value"] = masked_mean(value_loss(out["values"], inputs.old_values[idx], inputs.returns[idx], mask,
                                                     hp.value_clip_eps), mask)
        loss = loss + hp.vf_coef * terms["loss/value"]
    loss.backward()
    params = list(model.parameters()) + (list(head.parameters()) if head is not None else [])
    grad = torch.cat([p.grad.flatten() for p in params]).detach().clone()
    for p in params:  # policy_update accumulates into .grad: leave none behind
        p.grad = None
    return grad, {k: float(v.detach()) for k, v in terms.items()}


def run_update(model, head, batch, inputs, hp: UpdateParams, accelerator, seed: int = 3):
    params = list(model.parameters()) + (list(head.parameters()) if head is not None else [])
    opt = RecordingOptimizer(params)
    stats = policy_update(model, head, opt, FixedScheduler(), accelerator, batch, inputs, hp,
                          torch.Generator().manual_seed(seed))
    return opt.steps, stats


def minibatch_rows(n: int, minibatches: int, seed: int = 3) -> list[list[int]]:
    """The rows of each optimizer step, as policy_update draws them (ppo_epochs = 1)."""
    if minibatches == 1:
        return [list(range(n))]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    size = n // minibatches
    return [sorted(order[m * size:(m + 1) * size].tolist()) for m in range(minibatches)]


def assert_close(got: torch.Tensor, want: torch.Tensor, dtype, what: str) -> None:
    scale = float(want.abs().max())
    err = float((got - want).abs().max())
    assert scale > 0, f"{what}: the reference gradient is zero, the test would prove nothing"
    assert err <= TOL[dtype] * scale, f"{what}: max |diff| {err:.3g} vs max |grad| {scale:.3g}"


@pytest.fixture(scope="module")
def accelerator():
    from accelerate import Accelerator

    return Accelerator(cpu=True)


SPLITS = [(1, 1), (3, 1), (8, 1), (3, 2)]  # (micro_batch_size, minibatches): 3 cuts 8 rows 3+3+2, 4 rows 3+1


PRESET_MODE = {"grpo": "seq_mean_token_mean", "dr_grpo": "seq_mean_token_sum_norm", "ppo": "token_mean",
               "sft": "seq_mean_token_mean"}
CASES = ([(f, m, torch.float64) for f in FAMILIES for m in MODES]
         + [(f, PRESET_MODE[f], torch.float32) for f in FAMILIES])


@pytest.mark.parametrize("family,mode,dtype", CASES, ids=[f"{f}-{m}-{str(d)[6:]}" for f, m, d in CASES])
def test_gradient_and_loss_do_not_depend_on_the_split(tmp_path, accelerator, family, mode, dtype):
    model, head, batch, inputs = make_problem(dtype, family, tmp_path)
    for micro, minibatches in SPLITS:
        hp = params_for(family, mode, micro, minibatches)
        steps, stats = run_update(model, head, batch, inputs, hp, accelerator)
        step_rows = minibatch_rows(batch.size, minibatches)
        assert len(steps) == minibatches
        want_terms: dict[str, float] = {}
        for m, rows in enumerate(step_rows):
            grad, terms = reference(model, head, batch, inputs, hp, rows)
            assert_close(steps[m], grad, dtype, f"micro={micro} minibatches={minibatches} step {m}")
            for k, v in terms.items():
                want_terms[k] = want_terms.get(k, 0.0) + v / minibatches  # stats average over steps
        assert set(want_terms) <= set(stats)
        for k, v in want_terms.items():
            assert abs(stats[k] - v) <= TOL[dtype] * max(1.0, abs(v)), (k, micro, minibatches, stats[k], v)


# ---- two processes (DDP, gloo) ------------------------------------------------------------------

DRIVER = """
import json, sys, torch
sys.path.insert(0, {tests!r})
from pathlib import Path
from accelerate import Accelerator
import test_split_invariance as t
from mathrl.update import _select
torch.set_num_threads(1)
acc = Accelerator(cpu=True)
rank, world = acc.process_index, acc.num_processes
out = {{}}
for family, mode, dtype in t.CASES:
    if dtype == torch.float64:
        model, head, batch, inputs = t.make_problem(torch.float64, family, Path({tmp!r}) / f"r{{rank}}")
        model = acc.prepare(model)
        if head is not None:
            head = acc.prepare(head)
        rows = torch.arange(rank * 4, rank * 4 + 4)  # the ranks hold different numbers of tokens
        mb_batch, mb_inputs = _select(batch, inputs, rows)
        steps, _ = t.run_update(model, head, mb_batch, mb_inputs, t.params_for(family, mode, 3, 1), acc)
        out[family + "/" + mode] = steps[0].tolist()
if rank == 0:
    Path({tmp!r}, "ddp.json").write_text(json.dumps(out))
"""


@pytest.mark.slow
def test_two_processes_give_the_gradient_of_the_whole_batch(tmp_path):
    tests = str(Path(__file__).parent)
    (tmp_path / "driver.py").write_text(DRIVER.format(tests=tests, tmp=str(tmp_path)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": tests}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(port), str(tmp_path / "driver.py")], env=env, timeout=600, cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads((tmp_path / "ddp.json").read_text())
    for family, mode, dtype in CASES:
        if dtype == torch.float64:
            model, head, batch, inputs = make_problem(dtype, family, tmp_path / "one")
            grad, _ = reference(model, head, batch, inputs, params_for(family, mode, 3, 1), list(range(batch.size)))
            assert_close(torch.tensor(got[f"{family}/{mode}"], dtype=dtype), grad, dtype, f"{family} {mode}")


@pytest.mark.parametrize("minibatches", [1, 2])  # mu = 1 (old = logp.detach()), 2 steps (old from the old pass)
def test_the_old_logprobs_stand_in_for_a_reference_equal_to_the_policy(tmp_path, accelerator, minibatches):
    """train.py skips the reference pass while pi_ref = pi_old: the KL term then takes the old
    log-probs, which must give the loss and gradient of a reference pass returning those numbers."""
    model, head, batch, inputs = make_problem(torch.float64, "grpo", tmp_path)
    hp = params_for("grpo", "seq_mean_token_mean", 3, minibatches)
    if minibatches == 1:  # one update per rollout: pi_old is the current policy, as in the trainer
        inputs.old_logp = None
        with torch.no_grad():
            ref = forward_completion(model, batch.input_ids, batch.attention_mask, batch.prompt_len, 0.7)["logp"]
    else:
        ref = inputs.old_logp
    with_pass = UpdateInputs(inputs.advantages, inputs.mask, inputs.old_logp, ref_logp=ref)
    without = UpdateInputs(inputs.advantages, inputs.mask, inputs.old_logp, ref_is_old=True)
    (want, want_stats), (got, got_stats) = (run_update(model, head, batch, i, hp, accelerator)
                                            for i in (with_pass, without))
    assert len(got) == minibatches and "kl/mean" in got_stats
    for g, w in zip(got, want):
        assert_close(g, w, torch.float64, "ref_is_old")
    assert all(abs(got_stats[k] - w) <= 1e-10 for k, w in want_stats.items())

