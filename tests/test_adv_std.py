"""The adv_std knob: every combination with an outcome estimator means one thing (its baseline
divided by nothing, the group's reward std or the batch's advantage std), or is refused."""

import pytest
import torch

from mathrl.advantage import ADVANTAGES, CENTRED
from mathrl.config import ConfigError, build_config
from mathrl.recipe import Recipe, outcome_advantage

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
    assert torch.allclose(got, expected, atol=1e-9), (name, mode)
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
