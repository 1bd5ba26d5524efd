"""Pure statistics of evaluation: pass@k, maj@k, standard errors and confidence intervals.

No torch and no scipy: these run in the report on a laptop as well as in the trainer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

import math
import random
from collections.abc import Callable, Sequence

# Two-sided 95% Student-t critical values t_{0.975, df} for df = 1..30 (standard tables).
# Hard-coded because the only use is a CI over a handful of seeds, and scipy would be a
# dependency for one number. Beyond df = 30 we use the normal 1.96, which understates the
# half-width by at most 4% (t_{0.975, 31} = 2.040) and by < 1% from df = 120 on.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


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


def t_critical_95(df: int) -> float:
    """Two-sided 95% Student-t critical value; 1.96 past the table (df > 30)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval, Student t with n-1 df.

    Meant for a metric over seeds (n = 3..5), where the normal 1.96 would be far too narrow
    (t = 4.30 for 3 seeds). The half-width of a single value is NaN.
    """
    mean, se = mean_stderr(values)
    if math.isnan(se):
        return mean, math.nan
    return mean, t_critical_95(len(values) - 1) * se


def bootstrap_ci(
    values: Sequence[float], conf: float = 0.95, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean (Efron 1979).

    Resamples with a private random.Random(seed), so the interval is reproducible and the
    global RNG the trainer seeds is left untouched.
    """
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("bootstrap_ci of an empty sequence")
    if not (0.0 < conf < 1.0):
        raise ValueError(f"conf must be in (0, 1), got {conf}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = random.Random(seed)
    n = len(xs)
    means = sorted(sum(rng.choices(xs, k=n)) / n for _ in range(n_boot))
    alpha = (1.0 - conf) / 2.0
    return _quantile(means, alpha), _quantile(means, 1.0 - alpha)


def _quantile(sorted_xs: list[float], q: float) -> float:
    """Linear-interpolation quantile of sorted data (numpy's default 'linear' method)."""
    pos = q * (len(sorted_xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """PPO value diagnostics: 1 - Var(returns - values) / Var(returns) over the masked tokens
    (1: the value head predicts the returns, 0: no better than their mean); NaN when the
    returns do not vary."""
    m = mask.bool()
    var_returns = returns[m].var()
    if not math.isfinite(float(var_returns)) or float(var_returns) == 0:
        return math.nan
    return float(1 - (returns[m] - values[m]).var() / var_returns)
