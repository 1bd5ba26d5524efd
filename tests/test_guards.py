"""Numerical guards and loud warnings (issue 8), each on the tiny model.

The invariant: no NaN or inf ever reaches the optimizer. `optimizer_watch` replaces AdamW.step
with one that fails the test if any gradient it is about to apply is not finite.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import pytest
import torch
from conftest import TINY, tiny_run
from typer.testing import CliRunner

import mathrl.reward
import mathrl.train
from mathrl.advantage import ADVANTAGES, outcome
from mathrl.checkpoint import list_checkpoints
from mathrl.cli import app
from mathrl.health import CONDITIONS, WARN_EVERY, Health
from mathrl.results import RunDir
from mathrl.rollout import ROLLOUTS

# no eval, no checkpoints: these runs test the step itself
FAST = {"eval_limit": 0, "checkpoint_every": 0, "samples_every": 0}


@pytest.fixture
def optimizer_watch(monkeypatch) -> list[int]:
    """AdamW.step that asserts every gradient is finite; returns the list of steps taken."""
    taken: list[int] = []
    inner = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        for group in self.param_groups:
            for p in group["params"]:
                assert p.grad is None or torch.isfinite(p.grad).all(), "a non-finite gradient reached AdamW"
        taken.append(1)
        return inner(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    return taken


def trained_rows(run_dir) -> list[dict]:
    return [r for r in RunDir(run_dir).read_metrics() if "reward/mean" in r]


def final_weights_finite(run_dir) -> bool:
    state = torch.load(list_checkpoints(run_dir / "checkpoints")[-1] / "state.pt", weights_only=False)
    return all(torch.isfinite(t).all() for t in state["model"].values())


def patch_rewards(monkeypatch, values: list[float]) -> None:
    """A user reward hook gone wrong: base rewards cycle through `values`."""
    def base_rewards(grades):
        return torch.tensor([values[i % len(values)] for i in range(len(grades))])  # (N,)

    monkeypatch.setattr(mathrl.reward, "base_rewards", base_rewards)


def patch_completions(monkeypatch, edit) -> None:
    """Wrap the hf rollout so that `edit(batch)` can rewrite what the model produced."""
    inner = ROLLOUTS["hf"]()
    monkeypatch.setitem(ROLLOUTS, "hf", lambda: lambda *a, **k: edit(inner(*a, **k)))  # a backend factory


# ---- rewards ----------------------------------------------------------------------------------

def test_nan_and_inf_rewards_never_reach_the_optimizer(tmp_path, digit_tasks, monkeypatch, optimizer_watch, caplog):
    patch_rewards(monkeypatch, [math.nan, 1.0, math.inf, 0.0, -math.inf])
    run = tiny_run(digit_tasks, tmp_path / "run", steps=3, **FAST)
    rows = trained_rows(run)
    assert optimizer_watch and all(r["reward/nonfinite"] > 0 and r["warn/nonfinite_reward"] == 1 for r in rows)
    assert all(r["optim/skipped_steps"] == 0 and math.isfinite(r["loss/policy"]) for r in rows)
    assert final_weights_finite(run)
    assert sum("rewards were NaN or infinite" in m for m in caplog.messages) == 1  # once per WARN_EVERY steps


@pytest.mark.parametrize("algo", ["grpo", "dr_grpo", "rloo"])
def test_huge_rewards_are_skipped_or_clipped_never_nan(tmp_path, digit_tasks, monkeypatch, optimizer_watch, algo):
    patch_rewards(monkeypatch, [3e38, 0.0, -3e38, 1e30])  # near float32's limit: sums overflow to inf
    run = tiny_run(digit_tasks, tmp_path / algo, algo, steps=2, **FAST)
    for row in trained_rows(run):
        assert row["optim/skipped_steps"] > 0 or math.isfinite(row["optim/grad_norm"])
    assert final_weights_finite(run)


# ---- rollouts ---------------------------------------------------------------------------------

def test_zero_variance_groups_give_zero_advantage_and_a_warning(tmp_path, digit_tasks, monkeypatch,
                                                                optimizer_watch, caplog):
    patch_rewards(monkeypatch, [0.0])
    run = tiny_run(digit_tasks, tmp_path / "run", steps=2, format_reward=0, **FAST)
    rows = trained_rows(run)
    assert all(r["adv/zero_std_frac"] == 1 and r["adv/abs_mean"] == 0 and r["warn/zero_variance"] == 1 for r in rows)
    assert all(r["optim/skipped_steps"] == 0 for r in rows)
    assert any("zero reward variance" in m and "group_size" in m for m in caplog.messages)


@pytest.mark.parametrize("algo", ["grpo", "rloo"])  # KL in the loss (k3), KL in the reward (k1)
def test_a_batch_without_signal_takes_no_optimizer_step(tmp_path, digit_tasks, monkeypatch, optimizer_watch, algo):
    """All rewards 0 and the policy still the reference: the gradient is 0, and no optimizer
    step is taken (update.carries_signal: a step would still move weights by weight decay and
    advance Adam's state; before the KL took the old log-probs, rounding noise became lr-sized steps)."""
    from mathrl.models import load_model

    patch_rewards(monkeypatch, [0.0])  # no reference pass runs: the policy stays the reference throughout
    run = tiny_run(digit_tasks, tmp_path / "run", algo, steps=2, format_reward=0, save_final="true", **FAST)
    rows = trained_rows(run)
    assert not optimizer_watch
    assert all(r["optim/no_signal"] == 1 and r["optim/steps"] == 0 and r["kl/mean"] == 0 for r in rows)
    assert all(r["optim/lr"] == float(TINY["lr"]) for r in rows)
    initial, _ = load_model("tiny", seed=0)
    final = dict(load_model(str(run / "final"))[0].named_parameters())
    assert all(torch.equal(p, final[n]) for n, p in initial.named_parameters())


def test_k1_in_the_loss_has_a_gradient_even_at_the_reference(tmp_path, digit_tasks, monkeypatch, optimizer_watch):
    # k1 = log pi - log pi_ref: its gradient is the score function, not 0, at pi = pi_ref
    patch_rewards(monkeypatch, [0.0])
    rows = trained_rows(tiny_run(digit_tasks, tmp_path / "run", steps=1, format_reward=0, kl_estimator="k1", **FAST))
    assert rows[0]["optim/no_signal"] == 0 and rows[0]["optim/steps"] > 0 and optimizer_watch


def test_zero_advantages_still_step_once_the_policy_has_moved(tmp_path, digit_tasks, monkeypatch, optimizer_watch):
    # step 1 learns; steps 2-3 have no reward signal, but the KL term now pulls back to the
    # reference: a real gradient. The flag survives the checkpoint between the two calls.
    patch_rewards(monkeypatch, [0.0, 1.0])
    tiny_run(digit_tasks, tmp_path / "run", steps=1, format_reward=0, **FAST)
    patch_rewards(monkeypatch, [0.0])
    rows = trained_rows(tiny_run(digit_tasks, tmp_path / "run", steps=3, resume=True, format_reward=0, **FAST))
    assert [r["optim/no_signal"] for r in rows] == [0.0, 0.0, 0.0]
    assert all(r["optim/steps"] > 0 and r["kl/mean"] > 0 for r in rows[1:])


@pytest.mark.parametrize("algo", ["grpo", "dapo"])
def test_all_truncated_batch_trains_finitely_and_warns(tmp_path, digit_tasks, optimizer_watch, caplog, algo,
                                                       monkeypatch):
    # max_new_tokens=1 and an EOS id the model cannot sample: every row is truncated whatever the
    # sampler draws (a sampled EOS as the one token would end a row); DAPO also masks every
    # truncated row out of the loss
    import mathrl.rollout

    monkeypatch.setattr(mathrl.rollout, "eos_ids", lambda model, tokenizer: [-1])
    run = tiny_run(digit_tasks, tmp_path / algo, algo, steps=2, max_new_tokens=1, mask_truncated="true", **FAST)
    rows = trained_rows(run)
    assert all(r["rollout/truncated_frac"] == 1 and r["warn/truncated"] == 1 for r in rows)
    assert all(math.isfinite(r["loss/policy"]) and r["optim/skipped_steps"] == 0 for r in rows)
    assert final_weights_finite(run)
    assert any("raise max_new_tokens (now 1)" in m.lower() for m in caplog.messages)


def test_empty_completions_train_finitely_and_warn_no_answer(tmp_path, digit_tasks, monkeypatch,
                                                             optimizer_watch, caplog):
    def empty_some(batch):
        # rows 0-2: a backend that returned no token at all; every text is empty
        mask = batch.completion_mask.clone()
        mask[:3] = 0
        attention = batch.attention_mask.clone()
        attention[:3, batch.prompt_len:] = 0
        return replace(batch, completion_mask=mask, attention_mask=attention, completions=[""] * batch.size)

    patch_completions(monkeypatch, empty_some)
    run = tiny_run(digit_tasks, tmp_path / "run", steps=2, **FAST)
    rows = trained_rows(run)
    assert all(r["reward/no_answer_frac"] == 1 and r["warn/no_answer"] == 1 for r in rows)
    assert all(math.isfinite(r["loss/policy"]) and r["optim/skipped_steps"] == 0 for r in rows)
    assert any("cannot be extracted" in m for m in caplog.messages)


@pytest.mark.parametrize("adv_std", ["auto", "group", "batch"])
def test_a_group_of_one_trains_finitely(tmp_path, digit_tasks, optimizer_watch, adv_std):
    # REINFORCE++ needs no group: one prompt, one sample, so every std is over a single value
    run = tiny_run(digit_tasks, tmp_path / adv_std, "reinforce_pp", steps=2, group_size=1, prompts_per_step=1,
                   minibatches=1, adv_std=adv_std, **FAST)
    rows = trained_rows(run)
    assert all(r["optim/skipped_steps"] == 0 and math.isfinite(r["loss/policy"]) for r in rows)
    # one sample is its own baseline: every advantage is 0, so no step is rounding noise either
    assert len(optimizer_watch) == sum(r["optim/steps"] for r in rows) == 0
    assert all(r["optim/no_signal"] == 1 for r in rows)


# ---- divergence -------------------------------------------------------------------------------

def test_non_finite_steps_are_skipped_then_the_run_aborts_after_saving(tmp_path, digit_tasks, monkeypatch,
                                                                        optimizer_watch):
    monkeypatch.setitem(ADVANTAGES, "grpo", outcome(lambda rewards, group_size: torch.full_like(rewards, math.nan)))
    run = tmp_path / "run"
    args = ["run", "--task", "digit", "--tasks-dir", str(digit_tasks), "--output", str(run), "--max-steps", "10",
            "--quiet", *[a for k, v in {**TINY, **FAST}.items() for a in ("--set", f"{k}={v}")]]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 3, result.output
    assert "3 steps in a row had a non-finite loss or gradient" in result.stderr
    assert not optimizer_watch  # every update was skipped: nothing reached AdamW
    rows = trained_rows(run)
    assert [r["step"] for r in rows] == [1, 2, 3] and all(r["optim/skipped_steps"] == 4 for r in rows)
    assert all(r["warn/skipped_steps"] == 1 for r in rows)
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-0000003"]
    assert final_weights_finite(run)


# ---- warnings ---------------------------------------------------------------------------------

def test_kl_and_entropy_explosions_warn_on_the_tiny_model(tmp_path, digit_tasks, monkeypatch, caplog):
    import mathrl.train

    inner = mathrl.train.reference_logprobs
    def distant_reference(state, batch):  # 5 nats less likely on every sampled token: k3 = e^-5 + 5 - 1 ~ 4 nats
        state.policy_is_reference = False  # a different model from the start, so its pass always runs
        return inner(state, batch) - 5.0

    monkeypatch.setattr(mathrl.train, "reference_logprobs", distant_reference)
    # entropy_coef > 0 logs entropy/mean; a random model samples near-uniformly (ln V nats)
    run = tiny_run(digit_tasks, tmp_path / "run", steps=2, entropy_coef=0.01, **FAST)
    rows = trained_rows(run)
    assert all(r["kl/mean"] > 3 and r["warn/kl_explode"] == 1 for r in rows)
    assert all(r["warn/entropy_explode"] == 1 for r in rows)
    assert any("KL to the reference policy exploded" in m for m in caplog.messages)
    assert any("entropy exploded" in m for m in caplog.messages)


def test_healthy_metrics_raise_no_warning(caplog):
    health = Health(max_new_tokens=256, vocab_size=50_000)
    healthy = {"rollout/truncated_frac": 0.1, "reward/no_answer_frac": 0.2, "adv/zero_std_frac": 0.3,
               "kl/mean": 0.01, "entropy/mean": 1.2, "reward/nonfinite": 0.0, "optim/skipped_steps": 0.0}
    assert health.check(healthy, 1) == {} and not caplog.messages
    assert set(healthy) == {c.metric for c in CONDITIONS.values()}  # every condition is covered here


def test_warnings_are_throttled_per_condition_but_always_logged_in_metrics(caplog):
    health = Health(max_new_tokens=8, vocab_size=100)
    flags = [health.check({"rollout/truncated_frac": 0.9, "kl/mean": math.nan}, step) for step in range(1, 46)]
    assert all(f == {"warn/truncated": 1.0, "warn/kl_explode": 1.0} for f in flags)
    printed = [m for m in caplog.messages if "truncated" in m]
    assert len(printed) == len(range(1, 46, WARN_EVERY)) == 3  # steps 1, 21, 41
    assert "rollout/truncated_frac = 0.9" in printed[0] and "max_new_tokens (now 8)" in printed[0]
    assert caplog.records[0].levelno == logging.WARNING
