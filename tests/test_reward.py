"""The reward: 1 for a correct answer, 0 otherwise (no answer included), shaping only when asked,
and the reward/* metrics computed from the grades by hand."""

import math

import pytest
import torch

from mathrl.reward import base_rewards, format_bonus, overlong_penalty, sanitize, shaped_rewards
from mathrl.types import Grade

RIGHT = Grade(True, "7", "equal")
WRONG = Grade(False, "8", "not_equal")
NONE = Grade(False, None, "no_answer")
TIMEOUT = Grade(False, "x^x^x", "timeout")


def test_base_reward_pays_only_a_correct_answer():
    # An answer that could not be extracted earns what a wrong one earns: nothing.
    assert base_rewards([RIGHT, WRONG, NONE, TIMEOUT]).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_format_bonus_pays_any_extracted_answer_and_nothing_else():
    assert format_bonus([RIGHT, WRONG, NONE, TIMEOUT], 0.25).tolist() == [0.25, 0.25, 0.0, 0.25]


def test_overlong_penalty_is_dapo_eq_13():
    # L_max = 10, L_cache = 4: no penalty up to 6 tokens, then -penalty * (|o| - 6) / 4, capped at L_max.
    lengths = torch.tensor([0, 6, 7, 8, 10, 12])
    assert overlong_penalty(lengths, 10, 4, 2.0).tolist() == [0.0, 0.0, -0.5, -1.0, -2.0, -2.0]
    assert overlong_penalty(lengths, 10, 0, 2.0).tolist() == [0.0] * 6  # no buffer: off
    assert overlong_penalty(lengths, 10, 1, 2.0).tolist() == [0.0, 0.0, 0.0, 0.0, -2.0, -2.0]  # the last token only
    assert overlong_penalty(lengths, 10, 0, 2.0).dtype == torch.float


def test_sanitize_zeroes_and_counts_non_finite_rewards():
    rewards, bad = sanitize(torch.tensor([1.0, math.nan, math.inf, -math.inf, -0.5]))
    assert rewards.tolist() == [1.0, 0.0, 0.0, 0.0, -0.5] and bad == 3


def test_shaped_rewards_and_their_metrics_by_hand():
    grades = [RIGHT, WRONG, NONE, TIMEOUT, RIGHT]
    lengths = torch.tensor([3, 3, 3, 9, 10])  # L_max 10, buffer 2: the last two lose 0.5 and 1.0
    rewards, stats = shaped_rewards(grades, lengths, 10, format_reward=0.1, overlong_buffer=2, overlong_coef=1.0)
    expected = [1.1, 0.1, 0.0, 0.1 - 0.5, 1.1 - 1.0]
    assert rewards.tolist() == pytest.approx(expected)
    mean = sum(expected) / 5  # 0.38
    std = math.sqrt(sum((r - mean) ** 2 for r in expected) / 4)  # sample std (torch's default)
    assert stats == pytest.approx({
        "reward/mean": mean, "reward/std": std,
        "reward/correct_frac": 2 / 5,  # the share of correct grades, whatever the shaping
        "reward/no_answer_frac": 1 / 5, "reward/timeout_frac": 1 / 5, "reward/nonfinite": 0.0})


def test_the_overlong_penalty_defaults_to_one_at_the_limit():
    rewards, _ = shaped_rewards([RIGHT, RIGHT], torch.tensor([4, 8]), 8, overlong_buffer=4)
    assert rewards.tolist() == [1.0, 0.0]  # at L_max: 1 - 1


def test_unshaped_reward_is_the_grade():
    rewards, stats = shaped_rewards([RIGHT, NONE, WRONG], torch.tensor([99, 99, 99]), 8)
    assert rewards.tolist() == [1.0, 0.0, 0.0]  # defaults: no format bonus, no overlong penalty
    assert stats["reward/correct_frac"] == pytest.approx(1 / 3) and stats["reward/mean"] == pytest.approx(1 / 3)


def test_metrics_of_one_two_and_no_completions():
    one = shaped_rewards([RIGHT], torch.tensor([1]), 8)[1]
    assert one["reward/mean"] == 1.0 and one["reward/std"] == 0.0 and one["reward/correct_frac"] == 1.0
    lost = shaped_rewards([NONE], torch.tensor([1]), 8)[1]
    assert lost["reward/no_answer_frac"] == 1.0 and lost["reward/correct_frac"] == 0.0
    two = shaped_rewards([RIGHT, WRONG], torch.tensor([1, 1]), 8)[1]
    assert two["reward/std"] == pytest.approx(math.sqrt(0.5))  # (0.5^2 + 0.5^2) / (2 - 1)
    rewards, none = shaped_rewards([], torch.zeros(0, dtype=torch.long), 8)
    assert rewards.numel() == 0 and set(none.values()) == {0.0}
