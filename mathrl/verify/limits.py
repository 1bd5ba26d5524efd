"""Size limits on untrusted answers, and the static check that enforces them.

Model output is adversarial input: a power tower, a factorial of a factorial or a 10,000-deep
bracket nest costs nothing to write and can take the grader down. Every limit here is checked
*before* anything is evaluated, so exact arithmetic, float probing and SymPy only ever see
answers whose cost is bounded. Exceeding one is a verdict ("too_large"), not a crash.
"""

from __future__ import annotations

import math

from mathrl.verify.tree import children

MAX_ANSWER_CHARS = 2000  # an extracted answer longer than this is not a final answer
MAX_NESTING = 60  # bracket / brace depth; real answers stay below 10
MAX_PARSE_DEPTH = 150  # parser recursion (unary chains, power towers), well below Python's 1000
MAX_DIGITS = 2000  # digits in one number literal (int() refuses > 4300 by default)
MAX_SCI_EXPONENT = 1000  # |k| in 1.5e{k}
MAX_BITS = 100_000  # size of any exact intermediate value (2^{2^{16}} passes, one more level not)
MAX_SYMBOLIC_EXPONENT = 10_000  # x^{n} with symbolic x: SymPy's expand is polynomial in n
MAX_FACTORIAL = 1000  # n! for constant n
MAX_PLUS_MINUS = 4  # \pm signs in one answer: 2^4 = 16 expansions
MAX_MATRIX_WORK = 4096  # multiplications in one matrix product (16 x 16 times 16 x 16)
MAX_MATRIX_POWER = 16  # A^n for a matrix A
MAX_MATRIX_NODES = 20_000  # tree nodes in the entries of a computed matrix (symbolic powers grow)
MAX_CHAIN = 50  # sides of one relation chain or ratio


class Unparsable(ValueError):
    """The text is not an answer the grammar understands."""


class TooLarge(ValueError):
    """The answer is within the grammar but exceeds a size limit."""


def check_bounds(node) -> None:
    """Raise TooLarge if evaluating `node` (a parser AST, see parser.py) could explode."""
    _height(node)


# ---- height: log2 of the size of the numbers an exact evaluation would create --------------
# For a constant subtree, height H bounds log2(max(|numerator|, |denominator|)); |value| <= 2^H.
# Symbolic subtrees return None: SymPy keeps them unevaluated, only their exponents matter.

def _int_height(n: int) -> float:
    return math.log2(abs(n)) if n else 0.0


def _exponent_bound(h: float) -> float:
    try:
        return 2.0**h
    except OverflowError:
        return math.inf


def _h_pow(base, exp) -> float | None:
    hb, he = _height(base), _height(exp)
    if he is None:  # 2^x: SymPy keeps it as a power
        return None if hb is None else hb
    e = _exponent_bound(he)
    if hb is None:
        if e > MAX_SYMBOLIC_EXPONENT:
            raise TooLarge("symbolic exponent too large")
        return None
    h = max(hb, 1.0) * e
    if h > MAX_BITS:
        raise TooLarge("power too large")
    return h


def _h_fact(arg) -> float | None:
    h = _height(arg)
    if h is None:
        return None
    n = _exponent_bound(h)
    if n > MAX_FACTORIAL:
        raise TooLarge("factorial too large")
    return n * math.log2(max(n, 2.0))


def _h_sum(a, b) -> float | None:
    ha, hb = _height(a), _height(b)
    return None if ha is None or hb is None else ha + hb + 1.0


def _h_product(a, b) -> float | None:
    ha, hb = _height(a), _height(b)
    return None if ha is None or hb is None else ha + hb


def _h_fn(node) -> float | None:
    heights = [_height(arg) for arg in node[2:]]
    if any(h is None for h in heights):
        return None
    if node[1] == "binom":  # C(n, k) <= 2^n
        n = _exponent_bound(heights[0])
        if n > MAX_FACTORIAL:
            raise TooLarge("binomial too large")
        return n
    return max(heights, default=0.0)


def _h_dec(node) -> float:
    mantissa, _, exponent = node[1].lower().partition("e")
    digits = sum(ch.isdigit() for ch in mantissa)
    return (digits + abs(int(exponent or 0))) * math.log2(10)


def _h_structure(node) -> None:
    """Tuples, sets, equations, matrices: every element must pass on its own."""
    for child in children(node):
        _height(child)
    return None


_HEIGHT = {
    "num": lambda n: _int_height(n[1]),
    "dec": _h_dec,
    "sym": lambda n: None,
    "const": lambda n: 2.0 if n[1] != "i" else 1.0,
    "neg": lambda n: _height(n[1]),
    "add": lambda n: _h_sum(n[1], n[2]),
    "sub": lambda n: _h_sum(n[1], n[2]),
    "pm": lambda n: _h_sum(n[1], n[2]),
    "mul": lambda n: _h_product(n[1], n[2]),
    "div": lambda n: _h_product(n[1], n[2]),
    "pow": lambda n: _h_pow(n[1], n[2]),
    "fact": lambda n: _h_fact(n[1]),
    "fn": _h_fn,
}


def _height(node) -> float | None:
    rule = _HEIGHT.get(node[0], _h_structure)
    return rule(node)
