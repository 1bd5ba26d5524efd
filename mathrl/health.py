"""Loud warnings on silent failure (DESIGN.md rule 13).

A run can look fine (no exception, a loss that moves) while learning nothing: completions
cut off at the token limit, answers the extractor cannot find, groups whose rewards are all
equal (zero advantage, zero gradient), or a policy running away from its reference. After
each step `Health.check` compares that step's metrics with the thresholds below and returns
`warn/<name>: 1.0` for every condition that holds, logged with the step so reports and
scripts can find it. The warning itself goes to stderr (logger "mathrl.health") at most once
per condition every `every` steps, so a long run's log is not flooded.

The thresholds are judgement calls, not measurements: "most" means more than half, and KL or
entropy "explode" when they reach values no healthy run shows (see each entry).
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger("mathrl.health")

# One warning per condition per this many steps: the first one matters, the rest remind.
WARN_EVERY = 20


@dataclass(frozen=True)
class Condition:
    metric: str  # the step metric watched
    threshold: float | str  # a number, or the name of a context value (see Health.context)
    what: str  # the symptom, one phrase
    hint: str  # how to fix it; may name context values, e.g. {max_new_tokens}
    nonfinite_fires: bool = False  # NaN / inf counts as exceeded (values that "explode")


CONDITIONS: dict[str, Condition] = {
    "truncated": Condition("rollout/truncated_frac", 0.5, "most completions are truncated",
                           "Raise max_new_tokens (now {max_new_tokens}) or ask for shorter answers in the prompt"),
    "no_answer": Condition("reward/no_answer_frac", 0.5, "most answers cannot be extracted",
                           "Check that the prompt asks for the answer format the task's grader.extractor reads"),
    "zero_variance": Condition("adv/zero_std_frac", 0.5, "most groups have zero reward variance (no gradient)",
                               "The task is too hard or too easy for this model: raise group_size, "
                               "set dynamic_sampling=true, or pick an easier task"),
    # k3 per token; healthy GRPO runs stay around 1e-3..1e-1 nats, 1 nat means a runaway policy
    "kl_explode": Condition("kl/mean", 1.0, "KL to the reference policy exploded", "Lower lr or raise kl_coef",
                            nonfinite_fires=True),
    # 60% of the uniform distribution's ln(vocab): most tokens are near-random samples
    "entropy_explode": Condition("entropy/mean", "entropy_limit", "the policy's entropy exploded",
                                 "Lower lr or entropy_coef", nonfinite_fires=True),
    "nonfinite_reward": Condition("reward/nonfinite", 0.0, "rewards were NaN or infinite (scored 0 instead)",
                                  "Check the task's grader or reward hook"),
    "skipped_steps": Condition("optim/skipped_steps", 0.0, "optimizer steps were skipped (non-finite loss or gradient)",
                               "Lower lr or check the rewards for huge values"),
}


class Health:
    """Checks each step's metrics against CONDITIONS; prints throttled warnings."""

    def __init__(self, max_new_tokens: int, vocab_size: int, every: int = WARN_EVERY, verbose: bool = True):
        self.context = {"max_new_tokens": max_new_tokens, "entropy_limit": 0.6 * math.log(max(vocab_size, 2))}
        self.every = every
        self.verbose = verbose  # False on all but the main process: one warning per run, not per rank
        self.last_warned: dict[str, int] = {}

    def check(self, metrics: dict[str, Any], step: int) -> dict[str, float]:
        """`warn/<name>: 1.0` for each condition that holds at this step."""
        out = {}
        for name, cond in CONDITIONS.items():
            value = metrics.get(cond.metric)
            limit = self.context[cond.threshold] if isinstance(cond.threshold, str) else cond.threshold
            if not isinstance(value, (int, float)) or not _exceeds(float(value), limit, cond.nonfinite_fires):
                continue
            out[f"warn/{name}"] = 1.0
            if self.verbose and step - self.last_warned.get(name, -self.every) >= self.every:
                self.last_warned[name] = step
                LOG.warning("mathrl: WARNING (step %d): %s: %s = %.4g (threshold %.4g). %s.", step, cond.what,
                            cond.metric, value, limit, cond.hint.format(**self.context))
        return out


def _exceeds(value: float, limit: float, nonfinite_fires: bool) -> bool:
    if not math.isfinite(value):
        return nonfinite_fires or value == math.inf
    return value > limit


def warn_if_no_reward(state, summary: dict[str, Any]) -> None:
    """A model that earns no reward at step 0 gives GRPO no signal (every group's rewards are
    equal): say so before training starts, with the remedy. The reward is the strict grade; a
    lenient score above 0 means the model reaches answers but not in the graded format."""
    strict = max(summary["accuracy"], summary.get("pass@1", 0.0))
    if strict > 0 or summary["n"] < 16 or not state.accelerator.is_main_process:
        return
    lenient = max(summary.get("accuracy_lenient", 0.0), summary.get("pass@1_lenient", 0.0))
    found = (f" It reaches the gold answer on {lenient:.0%} of them when its last number is read, so the "
             f"answer format is what it misses." if lenient > 0 else "")
    print(f"mathrl: warning: {state.cfg.model} earns no reward on {summary['n']} {state.task.name} eval problems at "
          f"step 0 (strict grade, the reward's).{found} Group-relative rewards will be all equal, so training has "
          f"almost no signal. Remedy: a task at the model's frontier (`mathrl tasks list`, e.g. --task "
          f"arithmetic-add2), a stronger model (--model <HF id or folder>), or an SFT warm start (--algo sft first).",
          file=sys.stderr)
