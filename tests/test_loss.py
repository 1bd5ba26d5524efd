"""Loss pieces: hand values, gradient identities, finite results on degenerate masks; policy losses
against formulas written out independently, and one registered from outside the package."""

import math

import pytest
import torch

from conftest import metric_rows, write_digit_task
from mathrl.config import build_config
from mathrl.loss import (AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, aggregate, cispo, clip, clipped_surrogate, gspo,
                         kl, masked_mean, reinforce, value_loss)

LOG = math.log

# --------------------------------------------------------------------------- KL estimators


def test_kl_hand_values():
    # π = .5, π_ref = .25: k1 = log 2 = .693147; k2 = ½ (log 2)² = .240227
    # k3: x = log(.25/.5) = -log 2 -> e^x - x - 1 = .5 + .693147 - 1 = .193147
    # π = .25, π_ref = .5: k1 = -.693147; k2 = .240227; k3: x = log 2 -> 2 - .693147 - 1 = .306853
    logp = torch.tensor([[LOG(0.5), LOG(0.25)]])
    ref = torch.tensor([[LOG(0.25), LOG(0.5)]])
    torch.testing.assert_close(kl(logp, ref, "k1"), torch.tensor([[0.693147, -0.693147]]))
    torch.testing.assert_close(kl(logp, ref, "k2"), torch.tensor([[0.240227, 0.240227]]))
    torch.testing.assert_close(kl(logp, ref, "k3"), torch.tensor([[0.193147, 0.306853]]))


def test_k3_is_nonnegative_and_close_to_k2_for_small_differences():
    torch.manual_seed(0)
    logp, ref = torch.randn(50, 40) * 3, torch.randn(50, 40) * 3
    assert (kl(logp, ref, "k3") >= 0).all()
    # e^x - x - 1 = x²/2 + x³/6 + ...: relative gap to k2 = x²/2 is about |x|/3 <= .0034
    small = ref + torch.empty(50, 40).uniform_(-1e-2, 1e-2)
    rel = (kl(small.double(), ref.double(), "k3") / kl(small.double(), ref.double(), "k2") - 1).abs()
    assert rel.max() < 4e-3


def test_k3_clamps_the_log_ratio_on_both_sides():
    # log pi - log ref = +30: x = -30 clamps to -20, k3 = e^-20 + 20 - 1; -30: x = 20, k3 = e^20 - 21
    logp, ref = torch.tensor([30.0, -30.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    assert kl(logp, ref, "k3").tolist() == pytest.approx([math.exp(-20) + 19, math.exp(20) - 21], rel=1e-12)


def test_k3_is_finite_when_the_policy_collapses():
    # log π_ref - log π = 1000 would be exp(1000) = inf; clamped to 20: e^20 - 20 - 1
    logp = torch.tensor([[-1000.0, 0.0]], requires_grad=True)
    ref = torch.tensor([[0.0, -1000.0]])
    out = kl(logp, ref, "k3")
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 0], torch.tensor(math.exp(20) - 21))
    out.sum().backward()
    assert torch.isfinite(logp.grad).all()


def test_kl_in_reward_and_kl_in_loss_have_the_same_expected_gradient():
    # Exact enumeration over a 5-way categorical π_θ = softmax(θ) and a fixed π_ref.
    # On-policy, samples come from π_θ (their probability carries no gradient), so
    #   k2 in the loss:   Σ_x π(x) ∇ ½ (log π(x) - log π_ref(x))² = E[k1 ∇log π]
    #   k1 in the reward: REINFORCE with reward -k1 gives E[k1 ∇log π]
    #   both equal the true ∇ KL(π_θ || π_ref) = ∇ Σ_x π (log π - log π_ref)
    # whereas k3 in the loss gives ∇ KL(π_ref || π_θ), the *reverse* KL.
    torch.manual_seed(0)
    theta = torch.randn(5, dtype=torch.float64, requires_grad=True)
    ref = torch.log_softmax(torch.randn(5, dtype=torch.float64), -1)

    def grad(objective):
        (g,) = torch.autograd.grad(objective, theta, retain_graph=True)
        return g

    logp = torch.log_softmax(theta, -1)
    p = logp.exp().detach()  # the sampling distribution
    k2_in_loss = grad((p * kl(logp, ref, "k2")).sum())
    k1_in_reward = grad((p * kl(logp, ref, "k1").detach() * logp).sum())
    true_kl = grad((logp.exp() * (logp - ref)).sum())
    torch.testing.assert_close(k2_in_loss, k1_in_reward)
    torch.testing.assert_close(k2_in_loss, true_kl)
    k3_in_loss = grad((p * kl(logp, ref, "k3")).sum())
    reverse_kl = grad((ref.exp() * (ref - logp)).sum())
    torch.testing.assert_close(k3_in_loss, reverse_kl)
    assert not torch.allclose(k3_in_loss, true_kl)


def test_kl_registry_names():
    assert set(KL_ESTIMATORS) == {"k1", "k2", "k3"}
    with pytest.raises(KeyError):
        kl(torch.zeros(1, 1), torch.zeros(1, 1), "k4")


# --------------------------------------------------------------------------- clipped surrogate


def test_clipped_surrogate_hand_values():
    # ε = .2. ρ = 1.5, A = +1: min(1.5, 1.2) = 1.2 -> loss -1.2, clipped
    #         ρ = 1.5, A = -1: min(-1.5, -1.2) = -1.5 -> loss 1.5, not clipped
    #         ρ = .5,  A = -1: min(-.5, -.8) = -.8 -> loss .8, clipped
    #         ρ = .5,  A = +1: min(.5, .8) = .5 -> loss -.5, not clipped
    old = torch.zeros(1, 4)
    logp = torch.tensor([[LOG(1.5), LOG(1.5), LOG(0.5), LOG(0.5)]])
    adv = torch.tensor([[1.0, -1.0, -1.0, 1.0]])
    loss, clipped = clipped_surrogate(logp, old, adv, 0.2, 0.2)
    torch.testing.assert_close(loss, torch.tensor([[-1.2, 1.5, 0.8, -0.5]]))
    assert clipped.tolist() == [[True, False, True, False]]
    # DAPO clip-higher, ε_high = .28: ρ = 1.5, A = +1 -> min(1.5, 1.28) = 1.28
    loss, _ = clipped_surrogate(logp, old, adv, 0.2, 0.28)
    torch.testing.assert_close(loss[0, 0], torch.tensor(-1.28))


def test_clipped_surrogate_broadcasts_sequence_advantages():
    torch.manual_seed(1)
    logp, old, adv = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3)
    per_seq, clip_seq = clipped_surrogate(logp, old, adv, 0.2, 0.3)
    per_tok, clip_tok = clipped_surrogate(logp, old, adv[:, None].expand(3, 4), 0.2, 0.3)
    torch.testing.assert_close(per_seq, per_tok)
    assert per_seq.shape == (3, 4) and torch.equal(clip_seq, clip_tok)


def test_clipped_tokens_get_zero_gradient():
    torch.manual_seed(2)
    logp = (torch.randn(8, 16) * 0.5).requires_grad_()
    old, adv = torch.zeros(8, 16), torch.randn(8, 16)
    loss, clipped = clipped_surrogate(logp, old, adv, 0.2, 0.28)
    loss.sum().backward()
    assert 0 < clipped.sum() < clipped.numel()  # the check sees both kinds of token
    assert (logp.grad[clipped] == 0).all()
    assert (logp.grad[~clipped] != 0).all()
    # an unclipped token's gradient is the policy-gradient term -ρ A
    torch.testing.assert_close(logp.grad[~clipped], (-logp.exp() * adv)[~clipped].detach())


def test_on_policy_clipped_surrogate_is_reinforce():
    # μ = 1 (old_logp = logp.detach(), so ρ = 1 and nothing clips) and β = 0:
    # ∇ aggregate(clipped_surrogate) = -mean_i 1/|o_i| Σ_t A_i ∇ log π(o_it), checked on θ
    torch.manual_seed(3)
    theta = torch.randn(4, 6, 10, requires_grad=True)  # logits over a vocabulary of 10
    tokens = torch.randint(0, 10, (4, 6))
    mask = (torch.arange(6) < torch.tensor([[6], [3], [1], [0]])).float()
    adv = torch.randn(4)

    def logp():
        return torch.log_softmax(theta, -1).gather(-1, tokens[..., None]).squeeze(-1)  # (N, T)

    lp = logp()
    loss, clipped = clipped_surrogate(lp, lp.detach(), adv, 0.2, 0.2)
    (ppo,) = torch.autograd.grad(aggregate(loss, mask, "seq_mean_token_mean"), theta)
    assert not clipped.any()
    lengths = mask.sum(-1).clamp(min=1)
    reinforce_obj = -((adv[:, None] * logp() * mask).sum(-1) / lengths).mean()
    (reinforce,) = torch.autograd.grad(reinforce_obj, theta)
    torch.testing.assert_close(ppo, reinforce)
    assert ppo.abs().sum() > 0


# --------------------------------------------------------------------------- value loss


def test_value_loss_hand_values():
    # ε = .2, V_old = .5
    # V = 1.0, R = 0: V_clip = .7; max((1)², (.7)²) = 1 -> .5
    # V = 0.0, R = 1: V_clip = .3; max((1)², (.7)²) = 1 -> .5
    # V = 0.9, R = 1: V_clip = .7; max((.1)², (.3)²) = .09 -> .045 (clipped branch wins)
    # V = 0.6, R = 1: V_clip = .6; max((.4)², (.4)²) = .16 -> .08
    # padding -> 0
    values = torch.tensor([[1.0, 0.0, 0.9, 0.6, 3.0]], requires_grad=True)
    old = torch.full((1, 5), 0.5)
    returns = torch.tensor([[0.0, 1.0, 1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    loss = value_loss(values, old, returns, mask, 0.2)
    torch.testing.assert_close(loss, torch.tensor([[0.5, 0.5, 0.045, 0.08, 0.0]]))
    loss.sum().backward()
    # d/dV ½(V - R)² = V - R where the unclipped branch is active; 0 where the clipped one is
    # (V = .9) and on padding
    torch.testing.assert_close(values.grad, torch.tensor([[1.0, -1.0, 0.0, -0.4, 0.0]]))
    # below V_old: V = .2, R = .1: V_clip = .5 - .2 = .3; max((.1)², (.2)²) = .04 -> .02 (clipped wins)
    below = value_loss(torch.tensor([[0.2]]), torch.tensor([[0.5]]), torch.tensor([[0.1]]), torch.ones(1, 1), 0.2)
    torch.testing.assert_close(below, torch.tensor([[0.02]]))


# --------------------------------------------------------------------------- aggregation


X = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
M = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def test_aggregate_hand_values():
    # seq_mean_token_mean: row means (1+2)/2 = 1.5 and 4/1 = 4 -> (1.5 + 4)/2 = 2.75
    # token_mean: (1 + 2 + 4) / 3 tokens = 7/3
    # seq_mean_token_sum_norm, max_len 4: row sums 3/4 and 4/4 -> (.75 + 1)/2 = .875
    torch.testing.assert_close(aggregate(X, M, "seq_mean_token_mean"), torch.tensor(2.75))
    torch.testing.assert_close(aggregate(X, M, "token_mean"), torch.tensor(7 / 3))
    torch.testing.assert_close(aggregate(X, M, "seq_mean_token_sum_norm", max_len=4), torch.tensor(0.875))


def test_masked_mean_hand_values():
    # (1 + 2 + 4) / 3 = 7/3; an empty mask gives 0
    torch.testing.assert_close(masked_mean(X, M), torch.tensor(7 / 3))
    assert masked_mean(X, torch.zeros_like(M)).item() == 0.0
    assert masked_mean(X, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])).item() == 2.0  # one token


@pytest.mark.parametrize("mode", list(AGGREGATIONS))
def test_aggregate_is_finite_on_empty_rows_and_ignores_padding(mode):
    x = torch.tensor([[1.0, float("nan")], [float("inf"), -float("inf")]], requires_grad=True)
    one_empty = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # an empty completion in the batch
    out = aggregate(x, one_empty, mode, max_len=2)
    assert torch.isfinite(out)
    out.backward()
    assert torch.isfinite(x.grad).all()
    # every row empty (all completions truncated to nothing): 0, not NaN
    assert aggregate(x, torch.zeros(2, 2), mode, max_len=2).item() == 0.0


def test_empty_rows_weigh_in_the_sequence_mean():
    # row means 1.5 and 0 (empty) -> 0.75: an empty completion counts as a sequence with loss 0
    mask = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(aggregate(X, mask, "seq_mean_token_mean"), torch.tensor(0.75))


def test_seq_mean_token_sum_norm_needs_max_len():
    for bad in (None, 0):
        with pytest.raises(ValueError, match="^seq_mean_token_sum_norm needs max_len, the constant length normaliser$"):
            aggregate(X, M, "seq_mean_token_sum_norm", max_len=bad)
    torch.testing.assert_close(aggregate(X, M, "seq_mean_token_sum_norm", max_len=1), torch.tensor(3.5))  # (3 + 4) / 2


@pytest.mark.parametrize("mode", list(AGGREGATIONS))
def test_aggregate_matches_loop_reference(mode):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    lengths = [7, 4, 1, 0, 2]
    mask = (torch.arange(7) < torch.tensor(lengths)[:, None]).double()
    rows = [x[i, :n].tolist() for i, n in enumerate(lengths)]
    want = {
        "seq_mean_token_mean": sum(sum(r) / len(r) if r else 0.0 for r in rows) / len(rows),
        "token_mean": sum(sum(r) for r in rows) / sum(lengths),
        "seq_mean_token_sum_norm": sum(sum(r) / 7 for r in rows) / len(rows),
    }[mode]
    assert aggregate(x, mask, mode, max_len=7).item() == pytest.approx(want, abs=1e-12)


# --------------------------------------------------------------------------- policy losses
# Policy losses of loss.POLICY_LOSSES against formulas written out independently here, and a
# loss registered from outside the package that trains end to end (adding a loss touches only
# loss.py, presets.py and recipe.py; here not even those).

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


def test_gspo_inside_the_trust_region_is_the_unclipped_ratio_times_a():
    logp, old, adv, mask = tensors()
    loss, low, high = gspo(logp, old, adv, mask, 0.5, 0.5)  # s = 1.069, 0.819: both inside [0.5, 1.5]
    s = [math.exp(0.2 / 3), math.exp(-0.2)]
    for i in range(2):
        assert loss[i, :sum(MASK[i])].tolist() == pytest.approx([-s[i] * ADV[i]] * sum(MASK[i]), rel=1e-12)
    assert not (low | high).any()  # nothing clipped, not even where clipped == unclipped
    one = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)  # a one-token completion
    loss = gspo(logp, old, adv, one, 0.5, 0.5)[0]
    assert float(loss[0, 0]) == pytest.approx(-math.exp(0.1) * ADV[0], rel=1e-12)  # s = e^{-1.0 + 1.1}


def test_cispo_lower_cap_and_the_bounds_themselves():
    logp, old, adv, mask = tensors()
    loss, low, high = cispo(logp, old, adv, mask, 0.05, 0.5)
    # completion 1, token 0: r = e^{-0.2} = 0.819 < 0.95, so its weight is 0.95, and it is flagged low
    assert float(loss[1, 0]) == pytest.approx(-0.95 * ADV[1] * LOGP[1][0], rel=1e-12)
    assert low[1, 0] and not high[1, 0]
    _, low, high = cispo(logp, logp.detach(), adv, mask, 0.0, 0.0)  # r = 1 exactly, on both bounds
    assert not (low | high).any()


def test_clip_flags_a_small_positive_advantage_on_the_high_side_only():
    logp, old = torch.log(torch.tensor([[1.5]])), torch.zeros(1, 1)
    _, low, high = clip(logp, old, torch.tensor([0.5]), torch.ones(1, 1), 0.2, 0.2)
    assert high.tolist() == [[True]] and low.tolist() == [[False]]


@pytest.mark.parametrize("name", list(POLICY_LOSSES))
def test_per_token_advantages_equal_broadcast_sequence_advantages(name):
    """adv (N, T) with each row constant gives what adv (N,) gives: same loss and clip masks."""
    logp, old, adv, mask = tensors()
    per_seq = POLICY_LOSSES[name](logp, old, adv, mask, 0.05, 0.04)
    per_token = POLICY_LOSSES[name](logp, old, adv[:, None].expand(2, 3), mask, 0.05, 0.04)
    for a, b in zip(per_seq, per_token):
        assert a.shape == b.shape == (2, 3) and torch.equal(a, b)


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
    rows = metric_rows(run)
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
    rows = metric_rows(run)
    trained = [r for r in rows if "loss/policy" in r]
    assert len(trained) == 2 and sum(r["optim/steps"] for r in trained) >= 2
    assert all(math.isfinite(r["loss/policy"]) for r in trained)
    final = dict(AutoModelForCausalLM.from_pretrained(run / "final").named_parameters())
    initial = dict(load_model("tiny", seed=0)[0].named_parameters())
    assert any(not torch.equal(final[n], initial[n]) for n in initial)
