"""Shared vocabulary of mathrl: the objects that flow between modules.

Shapes use N = number of sequences in a batch (prompts_per_step * group_size),
P = padded prompt length, T = padded completion length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One verifiable problem, as a task loader produces it."""

    id: str  # stable identifier, unique within a task split
    question: str  # the raw question text
    gold: str  # the gold final answer (already extracted, e.g. "72" or "\\frac{1}{2}")
    messages: list[dict[str, str]] | None = None  # chat prompt (role/content), for chat models
    prompt: str | None = None  # plain-completion prompt, for base models / no chat template
    solution: str | None = None  # worked solution text, used by SFT
    meta: dict[str, Any] = field(default_factory=dict)  # task-specific extras (level, subject...)


@dataclass(frozen=True)
class Grade:
    """The verifier's verdict on one completion."""

    correct: bool
    extracted: str | None  # the final answer found in the completion (None: none found)
    reason: str  # why: "equal", "not_equal", "no_answer", "timeout", "unparsable", ...
    score: float | None = None  # partial credit in [0, 1] from a grader hook; None: 1 if correct else 0

    @property
    def value(self) -> float:
        """The reward's base value: the hook's score, else 1.0 when correct."""
        return self.score if self.score is not None else (1.0 if self.correct else 0.0)


@dataclass
class Batch:
    """A batch of rollouts: G completions per prompt, groups stored contiguously.

    Row i belongs to prompt i // group_size. Token tensors are on the training device.
    """

    input_ids: Any  # LongTensor (N, P+T): prompt left-padded, completion right-padded
    attention_mask: Any  # LongTensor (N, P+T): 1 on real tokens
    completion_mask: Any  # FloatTensor (N, T): 1 on completion tokens up to and including EOS
    prompt_len: int  # P: completion token t sits at column P + t of input_ids
    truncated: Any  # BoolTensor (N,): no EOS within max_new_tokens
    completions: list[str]  # N decoded completion texts (special tokens stripped)
    problems: list[Problem]  # N problems (each repeated group_size times)
    group_size: int  # G
    prompt_tokens: int = 0  # real (unpadded) prompt tokens processed by the rollout
    sample_logprobs: Any = None  # FloatTensor (N, T) from the rollout engine, if it reports them
    rewards: Any = None  # FloatTensor (N,), filled by the reward stage
    grades: list[Grade] = field(default_factory=list)  # N verdicts, filled by the reward stage

    @property
    def completion_ids(self):  # LongTensor (N, T)
        return self.input_ids[:, self.prompt_len :]

    @property
    def size(self) -> int:
        return len(self.completions)
