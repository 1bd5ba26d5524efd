"""The comparison statistics against cases with known answers (mathrl/stats.py)."""

import math

import numpy as np
import pytest
from scipy import stats as st

from mathrl.stats import (
    Variance,
    crossed_bootstrap,
    holm,
    power,
    prob_improvement,
    seeds_for_half_width,
    seeds_needed,
    seeds_problems_interval,
    t_interval,
    variance_components,
)


def test_t_interval_matches_the_t_table():
    # mean 0.6, sd 0.1, n 3: half-width t_{0.975,2} * 0.1 / sqrt(3) = 4.303 * 0.05774 = 0.2484
    est = t_interval([0.5, 0.6, 0.7])
    assert est.mean == pytest.approx(0.6)
    assert est.hi - est.mean == pytest.approx(4.3027 * 0.1 / math.sqrt(3), rel=1e-4)
    assert math.isnan(t_interval([0.3]).lo)
    assert t_interval([0.2, 0.2]).p == 0.0 and t_interval([0.0, 0.0]).p == 1.0


def test_bootstrap_of_a_constant_matrix_has_no_width():
    est = crossed_bootstrap(np.full((4, 30), 0.25), n_boot=500)
    assert (est.mean, est.lo, est.hi) == (0.25, 0.25, 0.25)
    assert est.p == pytest.approx(2 / 501)  # every resample is > 0: the smallest p the bootstrap can give


def test_bootstrap_with_problem_noise_only_matches_the_normal_interval():
    # Rows identical (no seed effect): the grand mean's SE is sd(problems)/sqrt(P); with
    # P = 400 the percentile interval is the normal one, 1.96 SE, within Monte Carlo error.
    rng = np.random.default_rng(1)
    problems = rng.normal(0.1, 0.2, size=400)
    est = crossed_bootstrap(np.tile(problems, (5, 1)), n_boot=20_000)
    se = problems.std(ddof=0) / math.sqrt(400)
    assert (est.hi - est.lo) / 2 == pytest.approx(1.96 * se, rel=0.05)
    assert est.lo < problems.mean() < est.hi and est.p < 1e-3


def test_bootstrap_sees_the_seed_noise_a_flat_bootstrap_would_hide():
    # 3 seeds that disagree by +-0.1 over 200 identical problems: resampling only the 600 cells
    # as if independent gives a tiny interval; the crossed bootstrap keeps the seed spread.
    x = np.repeat(np.array([[0.4], [0.5], [0.6]]), 200, axis=1)
    est = crossed_bootstrap(x, n_boot=5000)
    assert est.lo <= 0.42 and est.hi >= 0.58  # resamples of 3 seeds reach {0.4, 0.6} means 1/27 of the time
    flat = crossed_bootstrap(x.reshape(1, -1), n_boot=5000)
    assert flat.hi - flat.lo < 0.02


def test_bootstrap_is_reproducible_and_rejects_bad_input():
    x = np.random.default_rng(0).normal(size=(3, 10))
    assert crossed_bootstrap(x, n_boot=300, seed=5) == crossed_bootstrap(x, n_boot=300, seed=5)
    with pytest.raises(ValueError):
        crossed_bootstrap(np.zeros(5))
    with pytest.raises(ValueError):
        crossed_bootstrap(x, conf=1.0)


def test_holm_worked_example():
    # p = (0.01, 0.04, 0.03, 0.005), m = 4. Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03,
    # 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone max 0.06. Back in input order:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []


def test_probability_of_improvement():
    assert prob_improvement([3, 4], [1, 2]) == 1.0
    assert prob_improvement([1, 2], [3, 4]) == 0.0
    assert prob_improvement([1, 3], [2, 2]) == 0.5  # of 4 pairs, 3 > 2 twice and 1 < 2 twice
    assert prob_improvement([2], [2]) == 0.5  # a tie counts half


def test_variance_components_recover_a_simulated_design():
    rng = np.random.default_rng(0)
    s, p = 400, 300
    x = (rng.normal(0, 0.05, (s, 1)) + rng.normal(0, 0.2, (1, p)) + rng.normal(0, 0.3, (s, p)))
    v = variance_components(x)
    assert v.seed == pytest.approx(0.05**2, rel=0.2)
    assert v.problem == pytest.approx(0.2**2, rel=0.2)
    assert v.residual == pytest.approx(0.3**2, rel=0.02)


def test_seeds_needed_matches_the_closed_form_without_a_problem_term():
    # Paired t-test, normal approximation: n = ((z_.975 + z_.8) sd / delta)^2 = (2.8016 * 0.05 /
    # 0.02)^2 = 49.05; the t test needs about 2 seeds more (Guenther 1981: + z^2/2 = 1.92).
    var = Variance(seed=0.05**2, problem=0.0, residual=0.0, n_problems=100)
    n = seeds_needed(var, delta=0.02)
    closed = ((st.norm.ppf(0.975) + st.norm.ppf(0.8)) * 0.05 / 0.02) ** 2
    assert closed == pytest.approx(49.05, abs=0.01)
    assert math.ceil(closed) <= n <= math.ceil(closed + 1.92) + 1
    assert power(var, n, 0.02) >= 0.8 > power(var, n - 1, 0.02)


def test_power_analysis_says_when_seeds_cannot_help():
    # Problem term alone: SE floor sqrt(0.04 / 100) = 0.02 > 0.02 / 2.8: no number of seeds works.
    var = Variance(seed=0.001, problem=0.04, residual=0.0, n_problems=100)
    assert seeds_needed(var, delta=0.02) is None
    assert seeds_for_half_width(var, 0.03) is None
    n = seeds_needed(var, delta=0.2)  # a large difference is in reach: the first n with power >= 0.8
    assert n is not None and power(var, n, 0.2) >= 0.8 > power(var, n - 1, 0.2)


def test_seeds_for_half_width():
    var = Variance(seed=0.03**2, problem=0.0, residual=0.0, n_problems=100)
    n = seeds_for_half_width(var, 0.03)  # t_{.975,n-1} * 0.03 / sqrt(n) <= 0.03: n = 7 (2.447/sqrt(7) = 0.925)
    assert n == 7


def test_the_quoted_interval_is_never_narrower_than_the_t_interval_over_few_seeds():
    # 3 seeds at 0.4 / 0.5 / 0.6 on identical problems: the bootstrap's 10 distinct seed
    # resamples give at most [0.4, 0.6]; the t interval is 0.5 +- 4.303 * 0.1 / sqrt(3) = +-0.248.
    x = np.repeat(np.array([[0.4], [0.5], [0.6]]), 50, axis=1) + np.random.default_rng(0).normal(0, 1e-3, (3, 50))
    est = seeds_problems_interval(x, n_boot=5000)
    assert est.hi - est.mean == pytest.approx(4.3027 * 0.1 / math.sqrt(3), rel=0.02)
    assert est.p == pytest.approx(2 * st.t.sf(0.5 / (0.1 / math.sqrt(3)), 2), rel=0.05)
    # with many seeds and problems the two methods agree, and the bootstrap is kept where wider
    rng = np.random.default_rng(2)
    y = rng.normal(0.05, 0.02, (30, 1)) + rng.normal(0, 0.1, (1, 300)) + rng.normal(0, 0.2, (30, 300))
    boot, quoted = crossed_bootstrap(y, n_boot=5000), seeds_problems_interval(y, n_boot=5000)
    assert quoted.lo <= boot.lo and quoted.hi >= boot.hi
    assert (quoted.hi - quoted.lo) == pytest.approx(boot.hi - boot.lo, rel=0.15)
