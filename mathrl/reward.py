"""Grade -> reward. The only place where reward shaping lives.

The base reward is the verifier's verdict: 1.0 when the final answer equals the gold answer,
else 0.0 (a task's grader hook may give a score in [0, 1]; correct means a full score) — the
same `grade` the eval harness uses, so eval accuracy and reward never disagree about
correctness. Shaping terms are explicit config and off by default:
- format_reward: a bonus when an answer could be extracted at all;
- overlong (DAPO Eq. 13, "soft overlong punishment"): 0 while |o| <= L_max - L_cache,
  a linear penalty up to `overlong_penalty` inside the buffer of L_cache tokens before L_max.
Non-finite rewards (e.g. from a user hook) are replaced by 0 and counted, never passed on.
"""

from __future__ import annotations

import torch

from mathrl.types import Grade


def base_rewards(grades: list[Grade]) -> torch.Tensor:
    return torch.tensor([g.value for g in grades])  # (N,)


def format_bonus(grades: list[Grade], bonus: float) -> torch.Tensor:
    return torch.tensor([bonus if g.extracted is not None else 0.0 for g in grades])  # (N,)


def overlong_penalty(lengths: torch.Tensor, max_len: int, buffer: int, penalty: float) -> torch.Tensor:
    """DAPO Eq. 13: -penalty * (|o| - (L_max - L_cache)) / L_cache inside the buffer."""
    if buffer <= 0:
        return torch.zeros_like(lengths, dtype=torch.float)
    start = max_len - buffer
    over = (lengths.float() - start).clamp(min=0, max=buffer)  # (N,)
    return -penalty * over / buffer  # (N,)


def sanitize(rewards: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Replace NaN/inf by 0 so that nothing non-finite can reach the advantages."""
    bad = ~torch.isfinite(rewards)
    return torch.where(bad, torch.zeros_like(rewards), rewards), int(bad.sum())


def shaped_rewards(grades: list[Grade], lengths: torch.Tensor, max_len: int, format_reward: float = 0.0,
                   overlong_buffer: int = 0, overlong_coef: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The reward of each completion and the metrics that explain it."""
    correct = base_rewards(grades)  # (N,)
    rewards = (correct + format_bonus(grades, format_reward)
               + overlong_penalty(lengths, max_len, overlong_buffer, overlong_coef))  # (N,)
    rewards, n_bad = sanitize(rewards)
    n = max(len(grades), 1)
    stats = {
        "reward/mean": float(rewards.mean()) if len(grades) else 0.0,
        "reward/std": float(rewards.std()) if len(grades) > 1 else 0.0,
        "reward/correct_frac": sum(g.correct for g in grades) / n,
        "reward/no_answer_frac": sum(g.extracted is None for g in grades) / n,
        "reward/timeout_frac": sum(g.reason == "timeout" for g in grades) / n,
        "reward/nonfinite": float(n_bad),
    }
    return rewards, stats

