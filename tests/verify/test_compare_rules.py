"""compare.py rule by rule: one verdict per branch, written against the mutation run's survivors
(results/mutation/). The two sides are spelled differently (`6/2` for `3`), so that no verdict
comes from the identical-tree shortcut: every rule must really compute it.
"""

import pytest

from mathrl.verify import compare
from mathrl.verify.compare import _Cache


def test_the_symbolic_cache_keeps_the_most_recently_used_entries():
    cache = _Cache(2)
    cache.put("a", True)
    cache.put("b", False)
    assert cache.get("a") is True  # a is now the most recent: b goes first
    cache.put("c", True)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (True, None, True)
    assert len(cache.data) == 2


CASES = [
    # infinities: only the same one
    ("\\infty", "-\\infty", "not_equal"),
    ("-\\infty", "\\infty", "not_equal"),
    ("+\\infty", "\\infty", "equal"),
    ("\\infty", "\\infty + 1", "not_equal"),
    ("(-\\infty, 2)", "(-\\infty, 4/2)", "equal"),
    # two decimals compare by rel_tol, not by the rounding of either
    ("1.4142", "1.41421", "not_equal"),
    ("1.4142", "1.41421 \\cdot 1", "not_equal"),  # the same, past the plain-number fast path
    # a decimal stands for the exact values within half a unit of its last digit, the edge included
    ("1.2345", "1 + \\frac{23455}{100000}", "equal"),
    ("1.2345", "1 + \\frac{23456}{100000}", "not_equal"),
    ("1.0000", "\\frac{100005}{100000} + \\sin(0)", "equal"),  # no exact value: the float probe's
    ("1.0000", "\\frac{100006}{100000} + \\sin(0)", "not_equal"),
    ("0.7071", "\\frac{\\sqrt{2}}{2} + \\frac{i}{2}", "not_equal"),  # a complex value is no real decimal
    ("0.7071", "\\frac{\\sqrt{2}}{2} + 10^{-13} i", "equal"),  # below the probe's noise
    ("0.7071", "\\frac{\\sqrt{2}}{2} + 10^{-12} i", "not_equal"),  # at it
    # past float range: a huge rational against a constant the probe can or cannot hold
    ("10^{301}", "10^{400} \\sqrt{2}", "not_equal"),
    ("10^{300}", "\\frac{10^{300}}{\\sqrt{2}} \\cdot \\sqrt{2}", "equal"),  # 1e300 is not below it: SymPy
    # a lone decimal against an exact constant: a negated non-decimal has no decimal text
    ("-\\sqrt{2}", "-1.4142", "equal"),
    ("-1.4142", "-\\sqrt{2}", "equal"),
    ("-1.4", "-\\sqrt{2}", "not_equal"),  # too few digits to stand for the exact value
    # \pm over every kind of leaf: numbers, decimals, symbols, constants, functions
    ("1 \\pm \\sqrt{4}", "3, -1", "equal"),
    ("x \\pm 1.5", "x + 3/2, x - 3/2", "equal"),
    ("\\pi \\pm y", "\\pi + y, \\pi - y", "equal"),
    ("\\sin(x) \\pm 1", "\\sin x + 1, \\sin x - 1", "equal"),
    ("\\sin(x) \\pm 1", "\\cos x + 1, \\cos x - 1", "not_equal"),
    ("\\sqrt{5 \\pm 4}", "3, 1", "equal"),  # inside a function's argument
    ("(1 \\pm 2) \\cdot 3", "9, -3", "equal"),  # in the first operand
    ("x = 1 \\pm 2", "x = 3, x = -1", "equal"),
    ("x = 1 \\pm 2", "x = 3, x = 1", "not_equal"),
    ("\\{1 \\pm 2\\}", "\\{-1, 3\\}", "equal"),
    ("(1 \\pm 2, 0)", "(3, 0)", "not_equal"),  # a \pm inside a tuple is compared as written
    # equations: both sides crosswise, rearranged, scaled; labels
    ("x = 6/2", "3 = y", "not_equal"),
    ("x = 6/2", "3 = x", "equal"),
    ("y = 2x + 1", "2x + 1 = y", "equal"),
    ("2x + 3y = 6", "4x + 6y = 12", "equal"),
    ("y = x + 1", "x - y = -1", "equal"),
    ("x + y = 1", "x + y = 2", "not_equal"),
    ("x = (1, 2)", "y = (1, 2)", "not_equal"),
    ("3 = 2", "y = x + 1", "not_equal"),
    ("(1, 2) = 6/2", "3", "not_equal"),  # a tuple is no label and no calculation
    ("6/2 = x", "3", "equal"),
    ("4 = x", "3", "not_equal"),
    ("x = 6/2", "3", "equal"),
    ("1 + 2 = 6/2", "3", "equal"),  # a calculation states its result
    # a row or column vector as a tuple; a 1 x 1 matrix as its entry
    ("\\begin{pmatrix}1 & 4/2\\end{pmatrix}", "(1, 2)", "equal"),
    ("\\begin{pmatrix}1 \\\\ 4/2\\end{pmatrix}", "(1, 2)", "equal"),
    ("\\begin{pmatrix}1 \\\\ 4/2\\end{pmatrix}", "[1, 2]", "equal"),
    ("\\begin{pmatrix}1 \\\\ 4/2\\end{pmatrix}", "1, 2", "equal"),
    ("\\begin{pmatrix}1 \\\\ 4/2\\end{pmatrix}", "(2, 1)", "not_equal"),
    ("\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}", "(1, 2)", "not_equal"),
    ("\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}", "(1, 2, 3, 4)", "not_equal"),
    ("\\begin{pmatrix}1 & 2\\end{pmatrix}", "\\{1, 2\\}", "not_equal"),
    ("\\begin{pmatrix}6/2\\end{pmatrix}", "3", "equal"),
    ("\\begin{pmatrix}3 & 3\\end{pmatrix}", "3", "not_equal"),
    ("\\begin{pmatrix}4\\end{pmatrix}", "3", "not_equal"),
    # ratios: proportional, of equal length, not against a zero part
    ("2:3", "4:6", "equal"),
    ("2:3", "4:7", "not_equal"),
    ("2:3", "2:3:4", "not_equal"),
    ("2:3:4", "4:6:8", "equal"),
    ("1:0", "2:0", "equal"),
    ("0:1", "0:5", "not_equal"),  # a zero first part: every cross product is 0, nothing is shown
    ("4:6", "2:3", "equal"),  # a first part of 1 or of 2 is no zero
    ("2:4", "1:2", "equal"),
    ("2:5", "4/10", "equal"),
    ("2:5:1", "2/5", "not_equal"),
]


@pytest.mark.parametrize("pred, gold, reason", CASES)
def test_each_rule_of_the_comparison(pred, gold, reason):
    assert compare(pred, gold) == reason


def test_symbolic_verdicts_an_error_is_not_equal_and_the_cache_keys_the_tolerance_only_when_used(monkeypatch):
    """A worker reply without a verdict (SymPy raised) is "not shown equal". Exact comparisons
    share one cache entry whatever rel_tol; approximate ones are cached per rel_tol."""
    import importlib

    cmp = importlib.import_module("mathrl.verify.compare")  # the module: mathrl.verify.compare is also a function
    requests = []
    replies = iter([{"error": "SympifyError"}, {"equal": True}, {"equal": True}])
    monkeypatch.setattr(cmp, "SYMBOLIC_CACHE", _Cache(8))
    monkeypatch.setattr(cmp.POOL, "request", lambda job, timeout: requests.append(job) or next(replies))
    a, b = ("sym", "x"), ("sym", "y")
    assert cmp.symbolic_equal(a, b, 1e-6, False, 1.0) is False
    assert cmp.symbolic_equal(a, b, 1e-3, False, 1.0) is False and len(requests) == 1  # cached
    assert cmp.symbolic_equal(a, b, 1e-6, True, 1.0) is True
    assert cmp.symbolic_equal(a, b, 1e-3, True, 1.0) is True and len(requests) == 3
    assert cmp.symbolic_equal(a, b, 1e-3, True, 1.0) is True and len(requests) == 3
