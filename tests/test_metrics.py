"""pass@k / maj@k against brute force and hand cases; the stderr against hand arithmetic."""

import itertools
import math

import pytest

from mathrl.metrics import explained_variance, maj_at_k, mean_stderr, pass_at_k


def _pass_at_k_brute(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (the first c correct) holding a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_enumeration_of_subsets(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_pass_at_k_brute(n, c, k), abs=1e-12)


def test_pass_at_k_edge_cases():
    assert pass_at_k(10, 0, 5) == 0.0  # nothing correct
    assert pass_at_k(10, 10, 1) == 1.0  # everything correct
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the plain accuracy
    assert pass_at_k(10, 6, 5) == 1.0  # only 4 wrong: any 5 contain a correct one
    # n = 1000 overflows the naive binomial ratio in floats; the product form stays exact:
    # 1 - C(999, 100)/C(1000, 100) = 100/1000.
    assert pass_at_k(1000, 1, 100) == pytest.approx(0.1)


@pytest.mark.parametrize("n,c,k,message", [(4, 1, 5, "1 <= k <= n"), (4, 5, 1, "0 <= c <= n"),
                                           (4, -1, 1, "0 <= c <= n"), (4, 1, 0, "1 <= k <= n")])
def test_pass_at_k_rejects_invalid(n, c, k, message):
    with pytest.raises(ValueError, match=f"need {message}, got n={n}"):
        pass_at_k(n, c, k)


def test_maj_at_k_plain_majority():
    answers = ["3", "4", "4", "3", "4"]
    correct = [True, False, False, True, False]
    assert maj_at_k(answers, correct, 5) == 0.0  # "4" has 3 votes
    assert maj_at_k(answers, correct, 1) == 1.0  # only the first sample votes
    # first 4: "3" x2 vs "4" x2 is a tie, "3" appeared first
    assert maj_at_k(answers, correct, 4) == 1.0


def test_maj_at_k_tie_goes_to_earliest_class():
    assert maj_at_k(["a", "b"], [False, True], 2) == 0.0
    assert maj_at_k(["b", "a"], [True, False], 2) == 1.0
    # three-way tie among later answers: the class first seen wins, regardless of order of
    # its later members
    answers = ["x", "y", "z", "z", "y", "x"]
    assert maj_at_k(answers, [False, True, True, True, True, False], 6) == 0.0


def test_maj_at_k_none_never_wins():
    # None appears three times but does not vote; "7" wins with one vote
    assert maj_at_k([None, None, "7", None], [False, False, True, False], 4) == 1.0
    assert maj_at_k([None, None], [False, False], 2) == 0.0


def test_maj_at_k_pools_equivalent_answers():
    answers = ["1/2", "0.7", "0.5", "0.7", ".5"]
    correct = [True, False, True, False, True]
    # exact strings: "0.7" has 2 votes, each spelling of one half has 1
    assert maj_at_k(answers, correct, 5) == 0.0

    def numeric(a, b):
        return abs(eval(a) - eval(b)) < 1e-9  # test-only stand-in for the SymPy verifier

    # pooled: one half has 3 votes
    assert maj_at_k(answers, correct, 5, equivalent=numeric) == 1.0


def test_maj_at_k_rejects_invalid():
    with pytest.raises(ValueError, match="1 answers but 2 correctness flags"):
        maj_at_k(["1"], [True, False], 1)
    with pytest.raises(ValueError, match="need 1 <= k <= 2, got k=3"):
        maj_at_k(["1", "2"], [True, False], 3)


def test_mean_stderr_by_hand():
    # mean 2, deviations (-1, 0, 1): sample variance 2/2 = 1, stderr 1/sqrt(3)
    mean, se = mean_stderr([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert se == pytest.approx(1 / math.sqrt(3))
    mean, se = mean_stderr([5.0])
    assert mean == 5.0 and math.isnan(se)
    with pytest.raises(ValueError, match="^mean_stderr of an empty sequence$"):
        mean_stderr([])


@pytest.mark.filterwarnings("ignore:var\\(\\)")  # torch, on the one-token case
def test_explained_variance_by_hand():
    import torch

    returns = torch.tensor([[1.0, 2.0, 3.0, 99.0]])  # the last token is padding
    mask = torch.tensor([[1, 1, 1, 0]])
    assert explained_variance(returns.clone(), returns, mask) == 1.0  # a perfect value head
    # residuals (1, 0, 1) - mean 2/3: variance 1/3; Var(returns) = 1: 1 - 1/3
    assert explained_variance(torch.tensor([[0.0, 2.0, 2.0, 0.0]]), returns, mask) == pytest.approx(2 / 3)
    # returns (1, 3, 5): Var 4; residuals (1, 0, 0): variance 1/3 -> 1 - (1/3) / 4
    wide = torch.tensor([[1.0, 3.0, 5.0, 0.0]])
    assert explained_variance(torch.tensor([[0.0, 3.0, 5.0, 0.0]]), wide, mask) == pytest.approx(11 / 12)
    assert math.isnan(explained_variance(returns, torch.ones(1, 4), mask))  # constant returns
    assert math.isnan(explained_variance(returns, returns, torch.tensor([[1, 0, 0, 0]])))  # one token: NaN var
