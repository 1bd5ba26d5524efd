"""Pure statistics of one evaluation: pass@k, maj@k, the standard error of an accuracy.

No torch and no scipy: these run in the trainer. Intervals and tests that compare runs live in
mathrl/stats.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

import math
from collections.abc import Callable, Sequence

def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021, Eq. 1).

    pass@k = 1 - C(n-c, k) / C(n, k), the probability that a random k-subset of the n
    samples holds at least one correct one. Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i),
    the numerically stable product form of the Codex paper's reference code: the binomials
    themselves overflow floats for n in the hundreds.
    """
    if not (0 <= c <= n):
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not (1 <= k <= n):
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:  # every k-subset must contain a correct sample
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def maj_at_k(
    answers: Sequence[str | None],
    correct: Sequence[bool],
    k: int,
    equivalent: Callable[[str, str], bool] | None = None,
) -> float:
    """Majority vote (self-consistency, Wang et al. 2022) over the first k samples.

    Answers are pooled into equivalence classes: an answer joins the first class whose
    representative (the class's first member) it is `equivalent` to, so "0.5" and "1/2"
    vote together when the verifier says they are equal. Default equivalence is exact string
    equality. None (no extracted answer) never votes. The class with most votes wins; a tie
    goes to the class that appeared first, so the result is deterministic. The winner is
    graded by its representative's `correct` flag; with an equivalence that agrees with the
    grader every member carries the same flag anyway.

    Returns 1.0 if the winning class is correct, 0.0 otherwise (also when no answer voted).
    """
    if len(answers) != len(correct):
        raise ValueError(f"{len(answers)} answers but {len(correct)} correctness flags")
    if not (1 <= k <= len(answers)):
        raise ValueError(f"need 1 <= k <= {len(answers)}, got k={k}")
    same = equivalent if equivalent is not None else (lambda a, b: a == b)

    reps: list[int] = []  # index of each class's first member, in order of appearance
    votes: list[int] = []
    for i in range(k):
        a = answers[i]
        if a is None:
            continue
        for j, r in enumerate(reps):
            if same(answers[r], a):
                votes[j] += 1
                break
        else:
            reps.append(i)
            votes.append(1)
    if not reps:
        return 0.0
    winner = votes.index(max(votes))  # index() returns the first maximum: earliest class
    return 1.0 if correct[reps[winner]] else 0.0


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std with ddof=1, over sqrt(n)).

    The stderr of a single value is NaN: one sample says nothing about spread, and a 0
    would read as certainty.
    """
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("mean_stderr of an empty sequence")
    n = len(xs)
    mean = sum(xs) / n
    if n == 1:
        return mean, math.nan
    var = sum((x - mean) ** 2 for x in xs) / (n - 1)
    return mean, math.sqrt(var / n)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """PPO value diagnostics: 1 - Var(returns - values) / Var(returns) over the masked tokens
    (1: the value head predicts the returns, 0: no better than their mean); NaN when the
    returns do not vary."""
    m = mask.bool()
    var_returns = returns[m].var()
    if not math.isfinite(float(var_returns)) or float(var_returns) == 0:
        return math.nan
    return float(1 - (returns[m] - values[m]).var() / var_returns)
