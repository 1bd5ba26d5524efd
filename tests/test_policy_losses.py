"""Policy losses of loss.POLICY_LOSSES against formulas written out independently here, and a
loss registered from outside the package that trains end to end (adding a loss touches only
loss.py, presets.py and recipe.py; here not even those)."""

import json
import math

import pytest
import torch

from conftest import write_digit_task
from mathrl.config import build_config
from mathrl.loss import POLICY_LOSSES, aggregate, cispo, clip, gspo, reinforce

# Two completions, the second one token shorter (its last column is padding).
LOGP = [[-1.0, -0.5, -2.0], [-0.3, -1.2, 0.0]]
OLD = [[-1.1, -0.4, -2.2], [-0.1, -1.0, 0.0]]
MASK = [[1, 1, 1], [1, 1, 0]]
ADV = [0.7, -1.5]


def tensors():
    logp = torch.tensor(LOGP, dtype=torch.float64, requires_grad=True)
    return logp, torch.tensor(OLD, dtype=torch.float64), torch.tensor(ADV, dtype=torch.float64), \
        torch.tensor(MASK, dtype=torch.float64)


def test_gspo_value_and_gradient_are_the_sequence_level_objective():
    eps_low, eps_high = 0.05, 0.04
    logp, old, adv, mask = tensors()
    loss, low, high = gspo(logp, old, adv, mask, eps_low, eps_high)
    loss = loss.detach()
    # s_i = exp(mean over the completion's tokens of (logp - old)), by hand:
    s = [math.exp(((-1.0 + 1.1) + (-0.5 + 0.4) + (-2.0 + 2.2)) / 3),  # exp(0.2 / 3) = 1.0690
         math.exp(((-0.3 + 0.1) + (-1.2 + 1.0)) / 2)]  # exp(-0.2) = 0.8187
    for i in range(2):
        clipped_s = min(max(s[i], 1 - eps_low), 1 + eps_high)
        expected = -min(s[i] * ADV[i], clipped_s * ADV[i])  # GSPO Eq. 5, one value per completion
        for t in range(3):
            if MASK[i][t]:
                assert float(loss[i, t]) == pytest.approx(expected, rel=1e-12)
    # completion 0: s = 1.069 > 1.04 with A > 0 -> clipped high; completion 1: 0.819 < 0.95, A < 0 -> low
    assert high[0, :3].all() and not low[0].any() and low[1, :2].all() and not high[1].any()
    # Gradient: GSPO-token with the 1/|o_i| token mean equals the gradient of the sequence objective
    # 1/G Σ_i -min(s_i A_i, clip(s_i) A_i) with s_i differentiated through the mean of its tokens.
    eps_low, eps_high = 0.5, 0.5  # wide: nothing clipped, so the gradient is non-zero everywhere
    logp, old, adv, mask = tensors()
    aggregate(gspo(logp, old, adv, mask, eps_low, eps_high)[0], mask, "seq_mean_token_mean").backward()
    ours = logp.grad.clone()
    logp2 = torch.tensor(LOGP, dtype=torch.float64, requires_grad=True)
    terms = []
    for i in range(2):
        n = sum(MASK[i])
        s_i = torch.exp(sum(logp2[i, t] - OLD[i][t] for t in range(n)) / n)
        terms.append(-torch.minimum(s_i * ADV[i], s_i.clamp(1 - eps_low, 1 + eps_high) * ADV[i]))
    (sum(terms) / 2).backward()
    assert torch.allclose(ours, logp2.grad, rtol=1e-12, atol=1e-15) and ours[0].abs().min() > 0


def test_cispo_is_a_clipped_stop_gradient_weight_times_log_prob():
    eps_low, eps_high = 1.0, 0.1  # the paper's setting: no lower bound
    logp, old, adv, mask = tensors()
    loss, low, high = cispo(logp, old, adv, mask, eps_low, eps_high)
    loss.sum().backward()
    for i in range(2):
        for t in range(3):
            r = math.exp(LOGP[i][t] - OLD[i][t])
            w = min(max(r, 1 - eps_low), 1 + eps_high)  # MiniMax-M1 Eq. 5
            assert float(loss[i, t]) == pytest.approx(-w * ADV[i] * LOGP[i][t], rel=1e-12)  # Eq. 4
            assert float(logp.grad[i, t]) == pytest.approx(-w * ADV[i], rel=1e-12)  # no gradient through w
            assert bool(high[i, t]) == (r > 1 + eps_high) and not low[i, t]
    # e^{0.1}, e^{0.2} > 1.1 are capped, and those tokens keep a gradient (PPO's clip would drop it)
    assert high[0, 0] and high[0, 2] and logp.grad[0, 0] != 0


def test_reinforce_has_no_ratio_and_no_clip():
    logp, old, adv, mask = tensors()
    loss, low, high = reinforce(logp, old + 5.0, adv, mask, 0.2, 0.2)  # old_logp is ignored
    loss.sum().backward()
    for i in range(2):
        for t in range(3):
            assert float(loss[i, t]) == pytest.approx(-ADV[i] * LOGP[i][t], rel=1e-12)  # -A log π
            assert float(logp.grad[i, t]) == pytest.approx(-ADV[i], rel=1e-12)
    assert not (low | high).any()


def test_clip_sides_are_the_tokens_the_min_froze():
    logp = torch.log(torch.tensor([[0.5, 1.5, 1.0, 0.7]]))  # ratios 0.5, 1.5, 1.0, 0.7 against old = 0
    old = torch.zeros(1, 4)
    for a, want_low, want_high in ((1.0, [False] * 4, [False, True, False, False]),
                                   (-1.0, [True, False, False, True], [False] * 4)):
        _, low, high = clip(logp, old, torch.tensor([a]), torch.ones(1, 4), 0.2, 0.2)
        # A > 0: only ratio 1.5 > 1.2 loses its gradient; A < 0: ratios 0.5 and 0.7 < 0.8 do
        assert low[0].tolist() == want_low and high[0].tolist() == want_high


def test_every_policy_loss_at_ratio_one_has_the_policy_gradient():
    """On-policy (old = logp.detach()) every registered loss has the gradient -A ∇log π / token."""
    for name, fn in POLICY_LOSSES.items():
        logp, _, adv, mask = tensors()
        aggregate(fn(logp, logp.detach(), adv, mask, 0.2, 0.2)[0], mask, "token_mean").backward()
        expected = -adv[:, None].expand(2, 3) * mask / mask.sum()
        assert torch.allclose(logp.grad, expected, atol=1e-12), name


def test_a_loss_registered_from_outside_the_package_trains(tmp_path, monkeypatch):
    """The registry is the only place a policy loss is named: a toy loss added to the dict is
    validated by the Recipe, reaches the update and trains, with no other code changed."""
    from mathrl.train import train

    calls = []

    def half_reinforce(logp, old_logp, adv, mask, eps_low, eps_high):
        calls.append(logp.shape)
        loss, low, high = reinforce(logp, old_logp, adv, mask, eps_low, eps_high)
        return 0.5 * loss, low, high

    monkeypatch.setitem(POLICY_LOSSES, "half_reinforce", half_reinforce)
    tasks = write_digit_task(tmp_path)
    cfg = build_config("grpo", None, {"model": "tiny", "task": "digit", "tasks_dir": str(tasks), "max_steps": "2",
                                      "prompts_per_step": "2", "group_size": "4", "max_new_tokens": "8",
                                      "eval_limit": "2", "eval_every": "0", "format_reward": "0.5",
                                      "samples_every": "0", "save_final": "false",
                                      "policy_loss": "half_reinforce", "output": str(tmp_path / "run")})
    run = train(cfg, progress=False)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in rows if "loss/policy" in r]
    assert len(trained) == 2 and calls and any(r["optim/steps"] for r in trained)


@pytest.mark.parametrize("algo", ["gspo", "cispo", "reinforce"])
def test_new_presets_train_end_to_end_on_tiny(tmp_path, algo):
    from transformers import AutoModelForCausalLM

    from mathrl.models import load_model
    from mathrl.train import train

    tasks = write_digit_task(tmp_path)
    cfg = build_config(algo, None, {"model": "tiny", "task": "digit", "tasks_dir": str(tasks), "max_steps": "2",
                                    "prompts_per_step": "2", "group_size": "4", "max_new_tokens": "8", "lr": "1e-3",
                                    "eval_limit": "2", "eval_every": "0", "format_reward": "0.5",
                                    "samples_every": "0", "output": str(tmp_path / "run")})
    run = train(cfg, progress=False)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in rows if "loss/policy" in r]
    assert len(trained) == 2 and sum(r["optim/steps"] for r in trained) >= 2
    assert all(math.isfinite(r["loss/policy"]) for r in trained)
    final = dict(AutoModelForCausalLM.from_pretrained(run / "final").named_parameters())
    initial = dict(load_model("tiny", seed=0)[0].named_parameters())
    assert any(not torch.equal(final[n], initial[n]) for n in initial)
