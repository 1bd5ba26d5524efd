"""Intervals, tests and power for comparing algorithms over seeds x problems (DESIGN.md rule 19).

A comparison's data is a matrix of per-problem scores, one row per seed and one column per
evaluation problem (pass@1 from n samples). Both axes are samples: seeds of the training
randomness and problems of the task's population. So an interval resamples both (a crossed, or
two-way, bootstrap; Brennan 2001, Owen 2007 "The pigeonhole bootstrap"), and a paired design
resamples the same seeds and problems for both arms of a difference.

Library choice (measured in results/stats/README.md): scipy.stats gives the Student t and
noncentral t distributions (intervals over seeds, power) and the Mann-Whitney U that rliable's
probability of improvement is (Agarwal et al. 2021). Neither scipy.stats.bootstrap (one axis,
or paired samples of one axis) nor rliable (runs resampled within each task, unpaired) can
resample seeds and problems jointly, so the crossed bootstrap is the one estimator written here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

N_BOOT = 20_000  # p-values resolve 5e-5: enough for Holm over ~100 claims at 0.05
METHOD = (f"95% intervals over seeds and problems (paired by seed and problem for differences): the wider of a "
          f"crossed percentile bootstrap ({N_BOOT:,} resamples) and a two-way random-effects t interval "
          "(Satterthwaite df), p the larger of theirs, Holm-adjusted over every claim of the report; P(A > B) is "
          "rliable's probability of improvement over seeds (Mann-Whitney U)")


@dataclass(frozen=True)
class Estimate:
    mean: float
    lo: float  # confidence interval at `conf`
    hi: float
    p: float  # two-sided p-value of mean == 0 (bootstrap: the smallest level whose interval excludes 0)
    conf: float = 0.95


# ---------------------------------------------------------------------------- over seeds only
def t_interval(values: Sequence[float], conf: float = 0.95) -> Estimate:
    """Mean over seeds with a Student-t interval (n-1 df) and the one-sample t-test's p.
    One value gives a NaN interval: one seed says nothing about spread."""
    xs = np.asarray(values, dtype=float)
    if xs.size == 0:
        raise ValueError("t_interval of an empty sequence")
    mean = float(xs.mean())
    if xs.size == 1:
        return Estimate(mean, math.nan, math.nan, math.nan, conf)
    se = float(xs.std(ddof=1)) / math.sqrt(xs.size)
    if se == 0.0:
        return Estimate(mean, mean, mean, 1.0 if mean == 0 else 0.0, conf)
    half = float(st.t.ppf(0.5 + conf / 2, xs.size - 1)) * se
    p = float(st.ttest_1samp(xs, 0.0).pvalue)
    return Estimate(mean, mean - half, mean + half, p, conf)


# ---------------------------------------------------------------------------- seeds x problems
def crossed_bootstrap(scores: np.ndarray, conf: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """The grand mean of a (seeds, problems) matrix with a percentile interval from resampling
    seeds and problems independently, with replacement (pass a difference matrix for a paired
    comparison). A resample's mean is w_s . X . w_p / (S P), w the resampling counts, so
    20,000 resamples of a 10 x 100 matrix cost one small matrix product."""
    x = np.asarray(scores, dtype=float)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"need a non-empty (seeds, problems) matrix, got shape {x.shape}")
    if not 0.0 < conf < 1.0:
        raise ValueError(f"conf must be in (0, 1), got {conf}")
    n_s, n_p = x.shape
    rng = np.random.default_rng(seed)
    w_s, w_p = _counts(rng, n_boot, n_s), _counts(rng, n_boot, n_p)  # (B, S), (B, P)
    boots = ((w_s @ x) * w_p).sum(axis=1) / (n_s * n_p)  # (B,)
    alpha = 1.0 - conf
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    below, above = (boots <= 0).sum(), (boots >= 0).sum()
    p = min(1.0, 2 * (min(below, above) + 1) / (n_boot + 1))
    return Estimate(float(x.mean()), float(lo), float(hi), float(p), conf)


def _counts(rng: np.random.Generator, n_boot: int, n: int) -> np.ndarray:
    """How often each of n items is drawn in each of n_boot resamples of size n with replacement
    (one bincount over all resamples, not a multinomial draw per row)."""
    draws = rng.integers(0, n, size=(n_boot, n)) + np.arange(n_boot)[:, None] * n
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def seeds_problems_interval(scores: np.ndarray, conf: float = 0.95, n_boot: int = N_BOOT) -> Estimate:
    """The interval a report quotes for a (seeds, problems) matrix: the wider of the crossed
    bootstrap and the random-effects t interval (Satterthwaite df), with the larger p. A bootstrap
    over a handful of seeds is too narrow (its variance is (S-1)/S of the sample's, and 3 seeds
    have 10 distinct resamples); the t interval is not, and with 10+ seeds the two agree."""
    boot = crossed_bootstrap(scores, conf, n_boot)
    x = np.asarray(scores, dtype=float)
    if x.shape[0] < 2 or x.shape[1] < 2:
        return boot
    var = variance_components(x)
    se, df = var.se(x.shape[0]), var.df(x.shape[0])
    if se == 0.0:
        return boot
    half = float(st.t.ppf(0.5 + conf / 2, df)) * se
    p = float(2 * st.t.sf(abs(boot.mean) / se, df))
    return Estimate(boot.mean, min(boot.lo, boot.mean - half), max(boot.hi, boot.mean + half), max(boot.p, p), conf)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979): the i-th smallest times (m - i + 1),
    made monotone. Family-wise error <= alpha when claims are drawn from p_holm < alpha.
    Six lines of arithmetic; statsmodels' multipletests would bring pandas and patsy for them."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def prob_improvement(a: Sequence[float], b: Sequence[float]) -> float:
    """P(X_a > X_b) for a random run of each (ties count half): rliable's probability of
    improvement, which is the Mann-Whitney U statistic over n_a n_b."""
    if not len(a) or not len(b):
        raise ValueError("prob_improvement needs runs on both sides")
    return float(st.mannwhitneyu(a, b).statistic) / (len(a) * len(b))


# ---------------------------------------------------------------------------- power
@dataclass(frozen=True)
class Variance:
    """Method-of-moments components of a two-way (seed x problem) random-effects model of
    per-problem scores: X_sp = mu + a_s + b_p + e_sp (Searle et al. 1992, ch. 4)."""
    seed: float
    problem: float
    residual: float
    n_problems: int

    def se(self, n_seeds: int) -> float:
        """Standard error of the grand mean with n_seeds seeds and the same problems."""
        p = self.n_problems
        return math.sqrt(self.seed / n_seeds + self.problem / p + self.residual / (n_seeds * p))

    def df(self, n_seeds: int) -> float:
        """Satterthwaite degrees of freedom of that standard error: the expected mean squares
        (seed, problem, residual) weighted as se^2 = (MS_s + MS_p - MS_e) / (S P). Near S - 1 when
        seeds dominate, near P - 1 when problems do."""
        s, p = n_seeds, self.n_problems
        ms_s, ms_p, ms_e = self.residual + p * self.seed, self.residual + s * self.problem, self.residual
        num = (ms_s + ms_p - ms_e) ** 2
        den = ms_s**2 / (s - 1) + ms_p**2 / (p - 1) + ms_e**2 / ((s - 1) * (p - 1))
        return max(1.0, num / den) if den > 0 else float(s - 1)


def variance_components(scores: np.ndarray) -> Variance:
    x = np.asarray(scores, dtype=float)
    n_s, n_p = x.shape
    if n_s < 2 or n_p < 2:
        raise ValueError(f"variance components need >= 2 seeds and >= 2 problems, got shape {x.shape}")
    rows, cols, grand = x.mean(axis=1), x.mean(axis=0), x.mean()
    resid = x - rows[:, None] - cols[None, :] + grand
    v_e = float((resid**2).sum()) / ((n_s - 1) * (n_p - 1))
    v_s = max(0.0, float(rows.var(ddof=1)) - v_e / n_p)
    v_p = max(0.0, float(cols.var(ddof=1)) - v_e / n_s)
    return Variance(v_s, v_p, v_e, n_p)


def power(var: Variance, n_seeds: int, delta: float, alpha: float = 0.05) -> float:
    """Power of the two-sided test of a mean difference `delta` with n_seeds seeds: noncentral t
    with the Satterthwaite df of Variance.df."""
    if n_seeds < 2:
        return 0.0
    se = var.se(n_seeds)
    if se == 0.0:
        return 1.0
    df, nc = var.df(n_seeds), abs(delta) / se
    crit = st.t.ppf(1 - alpha / 2, df)
    return float(st.nct.sf(crit, df, nc) + st.nct.cdf(-crit, df, nc))


def seeds_needed(var: Variance, delta: float, alpha: float = 0.05, target: float = 0.8,
                 max_seeds: int = 10_000) -> int | None:
    """Fewest seeds that resolve `delta` with probability `target`; None when even unlimited
    seeds cannot (the problem term alone is too wide: more problems are needed, not seeds)."""
    if power(var, max_seeds, delta, alpha) < target:
        return None
    lo, hi = 2, max_seeds  # power rises with n: bisect for the first n that reaches the target
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if power(var, mid, delta, alpha) < target else (lo, mid)
    return lo


def seeds_for_half_width(var: Variance, half_width: float, conf: float = 0.95, max_seeds: int = 10_000) -> int | None:
    """Fewest seeds whose t-interval half-width is <= half_width; None if out of reach."""
    def width(n: int) -> float:
        return float(st.t.ppf(0.5 + conf / 2, var.df(n))) * var.se(n)

    if width(max_seeds) > half_width:
        return None
    lo, hi = 2, max_seeds
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if width(mid) > half_width else (lo, mid)
    return lo
