"""Advantage estimators: hand values, group invariants, loop references; the adv_std knob; the
registry, which takes an estimator from outside the package."""

import statistics

import pytest
import torch

from mathrl.advantage import (
    ADVANTAGES,
    CENTRED,
    dr_grpo,
    gae,
    grpo,
    online_rft,
    per_token_rewards,
    process_advantages,
    reinforce_pp,
    reinforce_pp_baseline,
    rloo,
    whiten,
)
from mathrl.config import ConfigError, build_config
from mathrl.recipe import Recipe, outcome_advantage

GROUP_RELATIVE = ["grpo", "dr_grpo", "rloo", "reinforce_pp_baseline"]

# --------------------------------------------------------------------------- loop references
# Plain-Python, one sample at a time, written from the papers' formulas.


def _norm(xs, eps=1e-6):
    if len(xs) < 2 or max(xs) == min(xs):
        return [0.0] * len(xs)
    m, s = statistics.mean(xs), statistics.stdev(xs)  # stdev is the unbiased (n-1) std
    return [(x - m) / (s + eps) for x in xs]


def _by_group(rewards, g):
    return [rewards[i : i + g] for i in range(0, len(rewards), g)]


def ref_grpo(rewards, g):
    return [a for grp in _by_group(rewards, g) for a in _norm(grp)]


def ref_dr_grpo(rewards, g):
    out = []
    for grp in _by_group(rewards, g):
        constant = max(grp) == min(grp)
        out += [0.0 if constant else x - statistics.mean(grp) for x in grp]
    return out


def ref_rloo(rewards, g):
    out = []
    for grp in _by_group(rewards, g):
        for i, x in enumerate(grp):
            others = grp[:i] + grp[i + 1 :]
            out.append(x - sum(others) / len(others) if others and max(grp) != min(grp) else 0.0)
    return out


def ref_reinforce_pp(rewards, g):
    return _norm(rewards)


def ref_reinforce_pp_baseline(rewards, g):
    return _norm(ref_dr_grpo(rewards, g))


def ref_online_rft(rewards, g):
    return [1.0 if x > 0 else 0.0 for x in rewards]


REFERENCES = {
    "grpo": ref_grpo,
    "dr_grpo": ref_dr_grpo,
    "rloo": ref_rloo,
    "reinforce_pp": ref_reinforce_pp,
    "reinforce_pp_baseline": ref_reinforce_pp_baseline,
    "online_rft": ref_online_rft,
}


def ref_gae(rewards, values, mask, gamma, lam):
    n, t_len = len(rewards), len(rewards[0])
    adv = [[0.0] * t_len for _ in range(n)]
    for i in range(n):
        length = int(sum(mask[i]))
        for t in range(length):  # Â_t = Σ_k (γλ)^k δ_{t+k}, written as the sum, not the recursion
            for k in range(length - t):
                v_next = values[i][t + k + 1] if t + k + 1 < length else 0.0
                delta = rewards[i][t + k] + gamma * v_next - values[i][t + k]
                adv[i][t] += (gamma * lam) ** k * delta
    ret = [[adv[i][t] + (values[i][t] if mask[i][t] else 0.0) for t in range(t_len)] for i in range(n)]
    return adv, ret


# --------------------------------------------------------------------------- hand values


def test_grpo_hand_values():
    # group [1,0,0,1]: mean .5, unbiased var = 4 * .25 / 3 = 1/3, std = .57735 -> ±.5/.57735 = ±.866025
    # group [1,0,0,0]: mean .25, var = (.5625 + 3 * .0625) / 3 = .25, std .5 -> 1.5, -.5, -.5, -.5
    adv = grpo(torch.tensor([1.0, 0, 0, 1, 1, 0, 0, 0]), 4)
    expected = torch.tensor([0.866025, -0.866025, -0.866025, 0.866025, 1.5, -0.5, -0.5, -0.5])
    torch.testing.assert_close(adv, expected, atol=1e-5, rtol=0)


def test_dr_grpo_hand_values():
    # group [1,0,0]: mean 1/3 -> 2/3, -1/3, -1/3; group [.5,.5,1]: mean 2/3 -> -1/6, -1/6, 1/3
    adv = dr_grpo(torch.tensor([1.0, 0, 0, 0.5, 0.5, 1.0]), 3)
    torch.testing.assert_close(adv, torch.tensor([2 / 3, -1 / 3, -1 / 3, -1 / 6, -1 / 6, 1 / 3]))


def test_rloo_hand_values():
    # group [1,0,0]: 1 - (0+0)/2 = 1; 0 - (1+0)/2 = -.5 (twice)
    # group [2,1]: 2 - 1 = 1; 1 - 2 = -1
    adv = rloo(torch.tensor([1.0, 0, 0, 2, 1, 0]), 3)
    torch.testing.assert_close(adv[:3], torch.tensor([1.0, -0.5, -0.5]))
    torch.testing.assert_close(rloo(torch.tensor([2.0, 1.0]), 2), torch.tensor([1.0, -1.0]))


def test_reinforce_pp_hand_values():
    # batch [1,0,0,0]: mean .25, unbiased var .25, std .5 -> 1.5, -.5, -.5, -.5 (groups ignored)
    adv = reinforce_pp(torch.tensor([1.0, 0, 0, 0]), 2)
    torch.testing.assert_close(adv, torch.tensor([1.5, -0.5, -0.5, -0.5]), atol=1e-5, rtol=0)


def test_reinforce_pp_baseline_hand_values():
    # groups [1,0], [1,1] -> centred [.5,-.5,0,0]; batch mean 0, var = .5/3 = 1/6, std .408248
    # -> .5/.408248 = 1.224745
    adv = reinforce_pp_baseline(torch.tensor([1.0, 0, 1, 1]), 2)
    torch.testing.assert_close(adv, torch.tensor([1.224745, -1.224745, 0, 0]), atol=1e-5, rtol=0)


def test_online_rft_hand_values():
    # correct (reward > 0) -> 1; wrong or penalised -> 0
    adv = online_rft(torch.tensor([1.0, 0.0, 0.5, -1.0]), 2)
    torch.testing.assert_close(adv, torch.tensor([1.0, 0.0, 1.0, 0.0]))


# --------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("name", GROUP_RELATIVE)
def test_group_advantages_are_zero_mean(name):
    torch.manual_seed(0)
    rewards = torch.rand(6 * 5)
    adv = ADVANTAGES[name].outcome(rewards, 5).view(6, 5)
    torch.testing.assert_close(adv.mean(-1), torch.zeros(6), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", GROUP_RELATIVE)
def test_zero_variance_groups_give_exact_zero(name):
    # seven fp32 0.1s: r - mean(r) is -7.45e-9 and std 8.0e-9, so a naive GRPO would give
    # -7.45e-9 / (8.0e-9 + 1e-6) = -0.0074 instead of 0; the constant group must give exactly 0
    rewards = torch.tensor([0.1] * 7 + [0.0, 1.0] * 3 + [1.0])
    adv = ADVANTAGES[name].outcome(rewards, 7)
    assert torch.isfinite(adv).all()
    assert (adv[:7] == 0).all() and (adv[7:] != 0).all()


@pytest.mark.parametrize("name", ["reinforce_pp", "reinforce_pp_baseline"])
def test_constant_batch_gives_exact_zero(name):
    assert (ADVANTAGES[name].outcome(torch.full((14,), 0.1), 7) == 0).all()


@pytest.mark.parametrize("name", GROUP_RELATIVE)
def test_group_of_one_gives_zero(name):
    adv = ADVANTAGES[name].outcome(torch.tensor([1.0, 0.0, 0.5]), 1)
    assert (adv == 0).all()


def test_batch_of_one_is_finite():
    assert (reinforce_pp(torch.tensor([1.0]), 1) == 0).all()


def test_ragged_batch_is_refused():
    with pytest.raises(ValueError, match=r"rewards \(3,\) is not a flat batch of groups of 2"):
        grpo(torch.tensor([1.0, 0.0, 1.0]), 2)
    with pytest.raises(ValueError, match=r"rewards \(2, 2\) is not a flat batch"):
        grpo(torch.zeros(2, 2), 2)  # whole groups, but not flat


@pytest.mark.parametrize("name", [n for n, e in ADVANTAGES.items() if e.outcome is not None])
@pytest.mark.parametrize("group_size", [1, 2, 5])
def test_estimator_matches_loop_reference(name, group_size):
    gen = torch.Generator().manual_seed(group_size)
    # binary rewards (the common case, many constant groups) and continuous ones
    binary = torch.randint(0, 2, (4 * group_size,), generator=gen).double()
    for rewards in [binary, torch.randn(4 * group_size, generator=gen).double()]:
        got = ADVANTAGES[name].outcome(rewards, group_size)
        want = torch.tensor(REFERENCES[name](rewards.tolist(), group_size), dtype=torch.float64)
        torch.testing.assert_close(got, want)


# --------------------------------------------------------------------------- whiten


def test_whiten_hand_values():
    # masked x = [1,2,3]: mean 2, unbiased var (1+0+1)/2 = 1 -> [-1, 0, 1]; the pad (100) -> 0
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    torch.testing.assert_close(whiten(x, mask), torch.tensor([[-1.0, 0.0, 1.0, 0.0]]))
    # shift_mean=False keeps the mean: (x - 2) / 1 + 2 = x
    torch.testing.assert_close(whiten(x, mask, shift_mean=False), torch.tensor([[1.0, 2.0, 3.0, 0.0]]))


def test_whiten_two_tokens_and_a_variance_other_than_one():
    # [2, 6]: mean 4, unbiased var (4 + 4) / 1 = 8 -> (x - 4) / sqrt(8 + 1e-8) = -+0.70711
    x = torch.tensor([[2.0, 6.0, 50.0]], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    z = 2 / (8 + 1e-8) ** 0.5
    torch.testing.assert_close(whiten(x, mask), torch.tensor([[-z, z, 0.0]], dtype=torch.float64), rtol=1e-12, atol=0)


def test_whiten_with_zero_or_one_token_is_finite():
    x = torch.tensor([[5.0, 7.0]])
    assert (whiten(x, torch.zeros(1, 2)) == 0).all()
    one = whiten(x, torch.tensor([[1.0, 0.0]]))  # mean 5, var taken as 0 -> (5 - 5) * 1e4 = 0
    assert torch.isfinite(one).all() and (one == 0).all()


# --------------------------------------------------------------------------- GAE


def test_gae_hand_values():
    # mask [1,1,0]; V = [.5, .8, pad]; reward 1 on the last real token; γ = .9, λ = .5
    # t=1: δ = 1 + .9*0 - .8 = .2 -> A1 = .2
    # t=0: δ = 0 + .9*.8 - .5 = .22 -> A0 = .22 + .9*.5*.2 = .31; returns = A + V = [.81, 1.0, 0]
    rewards = torch.tensor([[0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.8, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    adv, ret = gae(rewards, values, mask, gamma=0.9, lam=0.5)
    torch.testing.assert_close(adv, torch.tensor([[0.31, 0.2, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[0.81, 1.0, 0.0]]))


def test_gae_keeps_the_values_dtype_whatever_the_masks():
    adv, ret = gae(torch.ones(1, 2), torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.float64), 1.0, 1.0)
    assert adv.dtype == ret.dtype == torch.float32


def test_gae_lambda_one_is_returns_to_go_minus_values():
    torch.manual_seed(1)
    rewards, values = torch.randn(3, 6), torch.randn(3, 6)
    mask = torch.tensor([[1.0] * 6, [1.0] * 4 + [0.0] * 2, [0.0] * 6])
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    rtg = (rewards * mask).flip(-1).cumsum(-1).flip(-1)  # Σ_{t' >= t} r_t'
    torch.testing.assert_close(adv, (rtg - values) * mask)
    torch.testing.assert_close(ret, rtg * mask)


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 0.5), (0.99, 0.0)])
def test_gae_matches_loop_reference(gamma, lam):
    gen = torch.Generator().manual_seed(2)
    rewards = torch.randn(4, 7, generator=gen, dtype=torch.float64)
    values = torch.randn(4, 7, generator=gen, dtype=torch.float64)
    mask = (torch.arange(7) < torch.tensor([[7], [3], [1], [0]])).double()
    adv, ret = gae(rewards, values, mask, gamma, lam)
    want_adv, want_ret = ref_gae((rewards * mask).tolist(), values.tolist(), mask.tolist(), gamma, lam)
    torch.testing.assert_close(adv, torch.tensor(want_adv, dtype=torch.float64))
    torch.testing.assert_close(ret, torch.tensor(want_ret, dtype=torch.float64))


# --------------------------------------------------------------------------- process supervision


def test_process_advantages_hand_values():
    # group of 2: sample 0 has steps r=[1, 0] ending at tokens [1, 3]; sample 1 has r=[0] ending at 2
    # all group steps [1, 0, 0]: mean 1/3, std .57735 -> r̃ = [1.1547, -.57735, -.57735]
    # sample 0: t<=1 sees both steps: 1.1547 - .57735 = .57735; t in 2..3 sees step 2: -.57735
    # sample 1: t<=2 sees its step: -.57735; t=3 follows its last step: 0
    # group 2: sample 2 has no steps, sample 3 one step -> a single step normalises to 0
    adv = process_advantages([[1.0, 0.0], [0.0], [], [5.0]], [[1, 3], [2], [], [0]], group_size=2, T=4)
    a, b = 0.57735, -0.57735
    expected = torch.tensor([[a, a, b, b], [b, b, b, 0.0], [0.0] * 4, [0.0] * 4])
    torch.testing.assert_close(adv, expected, atol=1e-4, rtol=0)


def test_process_advantages_matches_loop_reference():
    gen = torch.Generator().manual_seed(3)
    n, g, t_len = 6, 3, 8
    n_steps = torch.randint(0, 4, (n,), generator=gen).tolist()  # 0 steps happens too
    ends = [sorted(torch.randperm(t_len, generator=gen)[:k].tolist()) for k in n_steps]
    step_r = [torch.randn(len(e), generator=gen).tolist() for e in ends]
    got = process_advantages(step_r, ends, g, t_len)
    for grp in range(0, n, g):
        normed = iter(_norm([r for i in range(grp, grp + g) for r in step_r[i]]))
        per_sample = [[next(normed) for _ in step_r[i]] for i in range(grp, grp + g)]
        for k, i in enumerate(range(grp, grp + g)):
            for t in range(t_len):
                want = sum(r for r, e in zip(per_sample[k], ends[i]) if e >= t)
                assert got[i, t].item() == pytest.approx(want, abs=1e-5)


def test_process_advantages_refuses_bad_steps():
    with pytest.raises(ValueError, match=r"sample 0: rewards \[1.0\] do not match step ends \[4\] within \[0, 4\)"):
        process_advantages([[1.0]], [[4]], group_size=1, T=4)  # end beyond the completion
    with pytest.raises(ValueError, match="sample 0: rewards"):
        process_advantages([[1.0, 2.0]], [[0]], group_size=1, T=4)  # rewards without ends
    with pytest.raises(ValueError, match="2 reward lists, 1 end lists: not groups of 2"):
        process_advantages([[1.0], [0.0]], [[0]], group_size=2, T=4)  # one end list short
    with pytest.raises(ValueError, match="not groups of 0"):
        process_advantages([[1.0]], [[0]], group_size=0, T=4)
    with pytest.raises(ValueError, match="3 reward lists, 3 end lists: not groups of 2"):
        process_advantages([[1.0], [0.0], [1.0]], [[0], [0], [0]], group_size=2, T=4)


def test_process_advantages_edge_cases_by_hand():
    # groups of one: a single step normalises to 0 (nothing to compare it with)
    assert (process_advantages([[1.0], [0.0]], [[0], [1]], group_size=1, T=2) == 0).all()
    # integer rewards are rewards too; a group without steps does not stop the next ones
    # group 2: steps [1, 0] -> r~ = +-0.5 / (0.70711 + 1e-6); sample 2 has both steps ending at token 1
    adv = process_advantages([[], [], [1, 0], []], [[], [], [1, 1], []], group_size=2, T=3)
    assert (adv[:2] == 0).all() and (adv[3] == 0).all()
    assert adv[2].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)  # +r~ - r~ on the same token
    adv = process_advantages([[], [], [1, 0], []], [[], [], [0, 2], []], group_size=2, T=3)
    r = 0.5 / (2 ** -0.5 + 1e-6)
    assert adv[2].tolist() == pytest.approx([r - r, -r, -r], rel=1e-6)
    # a small spread: std 0.000707, where eps = 1e-6 moves the result by 0.14%
    adv = process_advantages([[0.001], [0.0]], [[0], [0]], group_size=2, T=1)
    r = 0.0005 / (0.001 * 2 ** -0.5 + 1e-6)
    assert adv[:, 0].tolist() == pytest.approx([r, -r], rel=1e-5)


# --------------------------------------------------------------------------- token rewards


def test_per_token_rewards_hand_values():
    # score at the last real token, minus the (already β-scaled) KL on real tokens only
    # row 0: [-.1, 2 - .2, 0]; row 1: [-1 - .4, 0, 0]; row 2 (no tokens): all 0
    score = torch.tensor([2.0, -1.0, 3.0])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])
    expected = torch.tensor([[-0.1, 1.8, 0.0], [-1.4, 0.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(per_token_rewards(score, mask, kl), expected)
    no_kl = torch.tensor([[0.0, 2.0, 0.0], [-1.0, 0.0, 0.0], [0.0] * 3])
    torch.testing.assert_close(per_token_rewards(score, mask), no_kl)


def test_per_token_rewards_keep_the_scores_dtype_and_device():
    score = torch.tensor([2.0, -1.0], dtype=torch.float64)
    assert per_token_rewards(score, torch.ones(2, 3)).dtype == torch.float64
    meta = per_token_rewards(score.to("meta"), torch.ones(2, 3, device="meta"), torch.zeros(2, 3, device="meta"))
    assert meta.device.type == "meta"  # no tensor made on the default device: a GPU batch stays on its GPU


def test_per_token_rewards_sum_to_score_minus_kl():
    torch.manual_seed(4)
    score, kl = torch.randn(5), torch.rand(5, 6)
    mask = (torch.arange(6) < torch.tensor([[6], [5], [3], [1], [2]])).float()
    total = per_token_rewards(score, mask, kl).sum(-1)
    torch.testing.assert_close(total, score - (kl * mask).sum(-1))


# --------------------------------------------------------------------------- the adv_std knob
# The adv_std knob: every combination with an outcome estimator means one thing (its baseline
# divided by nothing, the group's reward std or the batch's advantage std), or is refused.

G = 4
REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0,  0.5, 0.5, 0.5, 0.5,  1.0, 0.0, 0.0, 0.0], dtype=torch.float64)


def baseline_by_hand(name, r):
    """Each estimator's centring, written out: group mean, leave-one-out mean, batch mean."""
    groups = r.view(-1, G)
    if name == "reinforce_pp":
        return r - r.mean()
    centred = groups - groups.mean(-1, keepdim=True)
    if name == "rloo":
        centred = centred * G / (G - 1)  # r_i - mean of the other G-1 = G/(G-1) (r_i - mean)
    return centred.reshape(-1)


@pytest.mark.parametrize("name", sorted(CENTRED))
@pytest.mark.parametrize("mode", ["none", "group", "batch"])
def test_each_combination_is_the_baseline_divided_once(name, mode):
    c = baseline_by_hand(name, REWARDS)
    if mode == "group":
        std = REWARDS.view(-1, G).std(-1, unbiased=True).repeat_interleave(G)  # per sample's group
        expected = c / (std + 1e-6)
    elif mode == "batch":
        expected = c / (c.std(unbiased=True) + 1e-6)
    else:
        expected = c
    got = outcome_advantage(name, mode).outcome(REWARDS, G)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12, msg=f"{name} {mode}")  # eps = 1e-6 shows
    assert torch.equal(got[4:8], torch.zeros(4, dtype=torch.float64)) or name == "reinforce_pp"  # constant group


def test_the_named_estimators_are_points_of_the_grid():
    adv = lambda name, mode: outcome_advantage(name, mode).outcome(REWARDS, G)  # noqa: E731
    assert torch.allclose(adv("grpo", "group"), ADVANTAGES["grpo"].outcome(REWARDS, G))  # GRPO divides once, not twice
    assert torch.equal(adv("grpo", "none"), ADVANTAGES["dr_grpo"].outcome(REWARDS, G))  # GRPO without std = Dr. GRPO
    assert torch.allclose(adv("dr_grpo", "group"), ADVANTAGES["grpo"].outcome(REWARDS, G))
    assert torch.allclose(adv("grpo", "batch"), ADVANTAGES["reinforce_pp_baseline"].outcome(REWARDS, G))
    assert torch.allclose(adv("reinforce_pp", "batch"), ADVANTAGES["reinforce_pp"].outcome(REWARDS, G))
    # "auto" and "none" differ exactly where the estimator's paper divides by a std
    assert not torch.allclose(adv("grpo", "none"), ADVANTAGES["grpo"].outcome(REWARDS, G))
    assert outcome_advantage("grpo", "auto") is ADVANTAGES["grpo"]


def test_combinations_without_a_meaning_are_refused_with_the_reason():
    with pytest.raises(ConfigError, match="no baseline"):
        Recipe.from_config(build_config("online_rft", None, {"adv_std": "group"}))
    online_rft = Recipe.from_config(build_config("online_rft", None, {"adv_std": "none"}))
    assert online_rft.advantage is ADVANTAGES["online_rft"]
    with pytest.raises(ConfigError, match="gae normalises its own"):
        Recipe.from_config(build_config("ppo", None, {"adv_std": "batch"}))
    with pytest.raises(ConfigError, match="process normalises its own"):
        Recipe.from_config(build_config("grpo_ps", None, {"adv_std": "none"}))
    with pytest.raises(ConfigError, match="SFT has none"):
        Recipe.from_config(build_config("sft", None, {"adv_std": "group"}))


# --------------------------------------------------------------------------- the registry


def test_a_token_level_estimator_registered_from_outside_the_package_trains(tmp_path, monkeypatch):
    """The registry is the only place an estimator is named: a toy token-level one added to the
    dict is validated by the config and the Recipe, reaches the update and trains, with no
    other code changed."""
    from conftest import metric_rows, write_digit_task
    from mathrl.advantage import AdvantageInputs, Estimator
    from mathrl.train import train

    calls = []

    def later_tokens_count_more(x: AdvantageInputs):
        calls.append(x.loss_mask.shape)
        centred = x.rewards - x.rewards.mean()  # (N,)
        ramp = torch.cumsum(x.mask, -1) / x.mask.sum(-1, keepdim=True).clamp(min=1)  # (N, T)
        return centred.unsqueeze(-1) * ramp * x.loss_mask, None  # (N, T)

    monkeypatch.setitem(ADVANTAGES, "ramp", Estimator(later_tokens_count_more, grouped=True))
    tasks = write_digit_task(tmp_path)
    cfg = build_config("grpo", None, {"model": "tiny", "task": "digit", "tasks_dir": str(tasks), "max_steps": "2",
                                      "prompts_per_step": "2", "group_size": "4", "max_new_tokens": "8",
                                      "eval_limit": "2", "eval_every": "0", "format_reward": "0.5",
                                      "samples_every": "0", "save_final": "false",
                                      "advantage": "ramp", "output": str(tmp_path / "run")})
    run = train(cfg, progress=False)
    trained = [r for r in metric_rows(run) if "loss/policy" in r]
    assert len(trained) == 2 and len(calls) == 2 and any(r["optim/steps"] for r in trained)
    assert all("adv/abs_mean" in r for r in trained)


def test_a_group_of_two_and_a_batch_of_two_are_divided_by_their_std():
    """The smallest sizes with a std: [1, 0] has unbiased std 0.7071, so each side becomes +-0.7071 / (0.7071 + eps)."""
    rewards = torch.tensor([1.0, 0.0], dtype=torch.float64)
    half = 0.5 / (2 ** -0.5 + 1e-6)
    for mode in ("group", "batch"):
        got = outcome_advantage("dr_grpo", mode).outcome(rewards, 2)
        torch.testing.assert_close(got, torch.tensor([half, -half], dtype=torch.float64), rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- the registry entries
# What the trainer calls: AdvantageInputs -> (advantages (N, T), value targets or None).

def _inputs(**kw):
    from mathrl.advantage import AdvantageInputs

    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    loss_mask = mask.clone()
    loss_mask[3] = 0  # a truncated row, out of the loss
    return AdvantageInputs(rewards=torch.tensor([1.0, 0.0, 0.5, 0.0]), mask=mask, loss_mask=loss_mask,
                           group_size=2, **kw)


def test_outcome_entries_subtract_the_summed_kl_and_see_every_ranks_rows():
    """reward - beta * sum_t KL_t per completion; the estimator over the gathered (global) rows;
    this rank's share broadcast over its tokens; no value targets."""
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.0, 0.4, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    other_rank = torch.tensor([0.25, 0.75])
    x = _inputs(kl=kl, kl_coef=0.5, gather=lambda t: torch.cat([t, other_rank]), local=lambda t: t[:4])
    adv, targets = ADVANTAGES["grpo"](x)
    seq = torch.tensor([1.0 - 0.5 * 0.6, 0.0 - 0.5 * 0.4, 0.5 - 0.5 * 1.0, 0.0])
    expected = grpo(torch.cat([seq, other_rank]), 2)[:4]
    assert targets is None and adv.shape == (4, 3)
    torch.testing.assert_close(adv, expected.unsqueeze(-1).expand(4, 3))
    torch.testing.assert_close(ADVANTAGES["reinforce_pp"](_inputs())[0][:, 0], reinforce_pp(_inputs().rewards, 2))
    assert {name for name, e in ADVANTAGES.items() if e.grouped} == {*GROUP_RELATIVE, "process"}
    assert [name for name, e in ADVANTAGES.items() if e.needs_values] == ["gae"]
    assert ADVANTAGES["grpo"].outcome is grpo and ADVANTAGES["online_rft"].outcome is online_rft


def test_ppo_entry_is_gae_over_the_token_rewards_whitened_on_the_loss_tokens():
    """Score at the last token minus beta * KL_t, GAE with the run's gamma and lambda (not swapped),
    advantages whitened over the tokens of the loss, returns as value targets."""
    values = torch.tensor([[0.2, 0.1, 0.4], [0.3, -0.2, 9.0], [0.5, 9.0, 9.0], [0.1, 0.2, 0.3]])
    kl = torch.full((4, 3), 0.1)
    x = _inputs(values=values, kl=kl, kl_coef=0.5, gamma=0.9, lam=0.6)
    adv, returns = ADVANTAGES["gae"](x)
    raw, expected_returns = gae(per_token_rewards(x.rewards, x.mask, 0.5 * kl), values, x.mask, 0.9, 0.6)
    torch.testing.assert_close(returns, expected_returns)
    torch.testing.assert_close(adv, whiten(raw, x.loss_mask))
    assert adv[3].eq(0).all() and not torch.allclose(returns, gae(per_token_rewards(x.rewards, x.mask, 0.5 * kl),
                                                                  values, x.mask, 0.6, 0.9)[1])
    no_kl = ADVANTAGES["gae"](_inputs(values=values, gamma=0.9, lam=0.6))[1]
    torch.testing.assert_close(no_kl, gae(per_token_rewards(x.rewards, x.mask), values, x.mask, 0.9, 0.6)[1])


def test_process_entry_reads_the_steps_of_each_completion():
    """Step rewards and ends from the thunk, normalised per group of the run's size, over the
    batch's T tokens, on the rewards' device and dtype of process_advantages; no value targets."""
    steps = ([[1.0, 0.0], [0.0], [1.0], [0.5, 0.5]], [[0, 2], [1], [0], [1, 2]])
    adv, targets = ADVANTAGES["process"](_inputs(steps=lambda: steps))
    assert targets is None
    torch.testing.assert_close(adv, process_advantages(*steps, 2, 3))
    assert not torch.allclose(adv, process_advantages(*steps, 4, 3))


def test_an_outcome_entry_made_at_run_time():
    """outcome(fn): not grouped unless said, fn kept as its outcome, applied through the entry."""
    from mathrl.advantage import outcome

    def double(rewards, group_size):
        return rewards * group_size

    entry = outcome(double)
    assert entry.grouped is False and entry.outcome is double and not entry.needs_values
    assert outcome(double, grouped=True).grouped is True
    adv, targets = entry(_inputs())
    assert targets is None
    torch.testing.assert_close(adv, (_inputs().rewards * 2).unsqueeze(-1).expand(4, 3))


def test_constant_groups_one_flag_per_group():
    from mathrl.advantage import constant_groups

    flags = constant_groups(torch.tensor([1.0, 1.0, 0.0, 1.0, 0.5, 0.5]), 2)
    assert flags.tolist() == [True, False, True]


def test_process_entry_follows_the_rewards_device():
    steps = ([[1.0], [0.0], [1.0], [0.5]], [[0], [1], [0], [2]])
    x = _inputs(steps=lambda: steps)
    x.rewards = x.rewards.to("meta")
    assert ADVANTAGES["process"](x)[0].device.type == "meta"  # a GPU batch's advantages stay on its GPU
