"""Hostile answers: each one must end in a verdict (never an exception, hang or side effect),
within the time limit plus generous slack for a loaded machine."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mathrl.verify import compare, grade
from mathrl.verify.worker import POOL

TIMEOUT = 0.5  # seconds of symbolic work per comparison in these tests
SLACK = 3.0  # the bound: timeout + 3 s, whatever the input

BOMBS = {
    "power tower": "2^{2^{2^{2^{2^{2}}}}}",
    "power tower plain": "9^9^9^9",
    "huge exponent": "10^{10^{10}}",
    "huge factorial": "100000!",
    "nested factorial": "((3!)!)!",
    "factorial tower": "(10!)!",
    "huge binomial": "\\binom{10^{9}}{5}",
    "symbolic power": "(x+1)^{100000}",
    "1 MB number": "1" * 1_000_000,
    "1 MB expression": "1+" * 500_000 + "1",
    "10k deep parentheses": "(" * 10_000 + "1" + ")" * 10_000,
    "deep fractions": "\\frac{1}{" * 3000 + "2" + "}" * 3000,
    "deep sqrt": "\\sqrt{" * 3000 + "2" + "}" * 3000,
    "unbalanced braces": "{" * 100_000,
    "unary minus chain": "-" * 100_000 + "1",
    "power chain": "x^" * 5000 + "x",
    "left right spam": "\\left(" * 5000 + "x" + "\\right)" * 5000,
    "huge matrix": "\\begin{pmatrix}" + "&".join(["1"] * 5000) + "\\end{pmatrix}",
    "many pm": "\\pm 1" * 30,
    "sci exponent": "1e999999999",
    "long decimal": "0." + "3" * 100_000,
    "digits in frac": "\\frac{" + "9" * 5000 + "}{7}",
    "boxed spam": "\\boxed{" * 100_000,
    "text spam": "\\text{" * 50_000 + "a" + "}" * 50_000,
    # issue 25's parsing paths: chains, ratios, `;` lists, primes, matrix arithmetic, sign flips
    "equation chain": "x" + " = 1" * 100_000,
    "approx chain": "1" + " \\approx 1" * 100_000,
    "chain at the length limit": "x" + "=1+1" * 390,
    "ratio chain": "1:" * 100_000 + "1",
    "semicolon list": "1;" * 100_000 + "1",
    "prime spam": "f" + "'" * 100_000,
    "indian grouping spam": "1" + ",23" * 50_000 + ",456",
    "matrix product too large": "\\begin{pmatrix}" + "\\\\".join(["1"] * 300) + "\\end{pmatrix}"
                                "\\begin{pmatrix}" + "&".join(["1"] * 300) + "\\end{pmatrix}",
    "matrix power huge": "\\begin{pmatrix}1&1\\\\1&0\\end{pmatrix}^{1000000000}",
    "symbolic matrix power": "\\begin{pmatrix}x&y&z\\\\y&z&x\\\\z&x&y\\end{pmatrix}^{16}",
    "power tower times matrix": "2^{2^{2^{2^{2^{2}}}}}\\begin{pmatrix}1&2\\end{pmatrix}",
    "nested matrix sums": "\\begin{pmatrix}1\\end{pmatrix}+" * 100 + "1",
    "sign-flipped range, deep bound": "-y > -" + "(" * 55 + "1" + ")" * 55,
    "sign-flipped range, huge power": "-y < (2^{10000})^{10000}",
    "long label": "A" * 1500 + " = 5",
    "decimal rounding, 1e999": "(1." + "3" * 1500 + "e999, 2)",
}

# Hostile raw completions for the free-text extractor (prose.py) and joined boxes.
TEXT_BOMBS = {
    "dollar spam": "$" * 1_000_000,
    "currency words": "$5 and " * 100_000,
    "unclosed \\(": "\\(" * 200_000 + "1",
    "unclosed \\[": "x \\[" * 100_000,
    "many spans joined": "$x$ and " * 100_000 + "$x$",
    "many boxes joined": "\\boxed{1}, " * 100_000,
    "long joiner": "\\boxed{1}" + " " * 100_000 + "\\boxed{2}",
    "whole math, huge": "x+" * 500_000 + "x",
    "set builder spam": "\\{x |" * 50_000,
    "overline spam": "0." + "\\overline{3}" * 50_000,
    "thousands spam": "1" + "{,}000" * 100_000,
    "last line huge": "We find\n" + "x+" * 500_000 + "x",
    "word digits": "QX7ZT " * 200_000,
    "chain in a span": "$x" + " = 1" * 100_000 + "$",
    "boxed chains": "\\boxed{x = 1 = 1 = 1}, " * 50_000,
    "currency decimal commas": "12,50 € " * 100_000,
    "long whole solution": "Step.\n" * 100_000 + "\\boxed{3}",
}


@pytest.mark.parametrize("completion", TEXT_BOMBS.values(), ids=TEXT_BOMBS.keys())
def test_hostile_text_ends_in_a_verdict_quickly(completion):
    start = time.monotonic()
    g = grade(completion, "x+1", timeout=TIMEOUT)
    assert not g.correct
    assert compare(completion, "x+1", timeout=TIMEOUT) != "equal"  # an answer that carries wrappers
    assert compare("x+1", completion, timeout=TIMEOUT) != "equal"  # a gold written as a solution
    assert time.monotonic() - start < 2 * (TIMEOUT + SLACK)


@pytest.mark.parametrize("pred", BOMBS.values(), ids=BOMBS.keys())
def test_bombs_end_in_a_verdict_quickly(pred):
    start = time.monotonic()
    reason = compare(pred, "x+1", timeout=TIMEOUT)
    assert reason in ("not_equal", "unparsable", "too_large", "timeout")
    g = grade(f"\\boxed{{{pred}}}", "x+1", timeout=TIMEOUT)
    assert not g.correct
    assert time.monotonic() - start < 2 * (TIMEOUT + SLACK)


@pytest.mark.parametrize("pred, reason", [
    ("2^{2^{2^{2^{2^{2}}}}}", "too_large"), ("100000!", "too_large"), ("(x+1)^{100000}", "too_large"),
    ("(" * 10_000 + "1" + ")" * 10_000, "too_large"), ("1" * 1_000_000, "too_large"),
    ("1e999999999", "too_large"),
])
def test_limits_are_reported_as_too_large(pred, reason):
    assert compare(pred, "1", timeout=TIMEOUT) == reason


def test_limits_still_allow_real_answers():
    assert compare("2^{2^{2^{2}}}", "65536") == "equal"  # a four-level tower is fine
    assert compare("2^{2010}", str(2**2010)) == "equal"
    assert compare("100!", str(__import__("math").factorial(100))) == "equal"
    assert compare("\\binom{100}{50}", str(__import__("math").comb(100, 50))) == "equal"


SLOW = ("(x+1)^{3000}", "x^{3000}+1")  # floats overflow, so SymPy must expand: seconds


@pytest.fixture
def ready_workers():
    """Both pool workers started: SymPy's import (seconds on a busy machine) is not part of
    the comparison's limit, so the timings below measure the limit alone."""
    for worker in POOL.workers:
        if not worker.alive():
            worker.spawn()
        if not worker.ready:
            worker.wait_ready()


def test_slow_symbolic_comparison_times_out_and_worker_recovers(ready_workers):
    start = time.monotonic()
    assert compare(*SLOW, timeout=TIMEOUT) == "timeout"
    assert time.monotonic() - start < TIMEOUT + SLACK
    restarts = POOL.stats()["restarts"]
    # The killed worker is replaced on the next symbolic request, which then works.
    assert compare("10^{300}\\sqrt{2} + 1 - 10^{300}\\sqrt{2}", "1", timeout=30) == "equal"
    assert POOL.stats()["restarts"] >= restarts


def test_timeout_works_in_threads(ready_workers):
    # signal.alarm only works in the main thread; the worker process works anywhere.
    with ThreadPoolExecutor(max_workers=2) as pool:
        start = time.monotonic()
        reasons = list(pool.map(lambda _: compare(*SLOW, timeout=TIMEOUT), range(2)))
    assert reasons == ["timeout", "timeout"]
    assert time.monotonic() - start < TIMEOUT + SLACK


INJECTIONS = [
    "__import__('os').system('touch {canary}')",
    '__import__("os").system("touch {canary}")',
    "\\text{{__import__('os').system('touch {canary}')}}",
    "\\frac{{__import__('os').system('touch {canary}')}}{{2}}",
    "eval(\"__import__('os').system('touch {canary}')\")",
    "exec('import os; os.system(\"touch {canary}\")')",
    "(lambda: __import__('os').system('touch {canary}'))()",
    "().__class__.__bases__[0].__subclasses__()",
    "Symbol('x').__class__.__init__.__globals__['os'].system('touch {canary}')",
    "x; import os; os.system('touch {canary}')",
    "\\mathrm{{os}}.\\mathrm{{system}}('touch {canary}')",
    "open('{canary}', 'w').write('x')",
    "{{__import__('os').system('touch {canary}')}}",
    "$__import__('os').system('touch {canary}')$",
]


@pytest.mark.parametrize("template", INJECTIONS)
@pytest.mark.parametrize("mode", ["math", "numeric", "exact"])
def test_code_injection_never_runs(template, mode, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    canary = tmp_path / "CANARY"
    payload = template.format(canary=canary)
    for completion in (payload, f"\\boxed{{{payload}}}", f"The answer is {payload}", f"#### {payload}"):
        g = grade(completion, "-7", mode=mode, timeout=TIMEOUT)  # a number no payload contains
        assert not g.correct
        compare(payload, payload.replace("touch", "rm"), mode=mode, timeout=TIMEOUT)
    assert not canary.exists()
    assert not (tmp_path / "{canary}").exists()


def test_numbers_past_float_range_do_not_need_sympy():
    # The float probe cannot hold a 309-digit number; it still differs from 2√3 at once.
    requests = POOL.stats()["requests"]
    assert compare("3" * 309, "2\\sqrt{3}", timeout=TIMEOUT) == "not_equal"
    assert compare("2\\sqrt{3}", "9" * 400, timeout=TIMEOUT) == "not_equal"
    assert POOL.stats()["requests"] == requests
