"""Equivalence of two parsed answers, cheapest test first.

Scalars: identical trees -> exact rational value (Fraction) -> numeric probe at random points
-> SymPy in the worker process (only when the probe cannot decide). Structures: tuples and
intervals are ordered and keep their brackets, sets and bare lists of solutions are
unordered, `\\pm` expands into both answers, `x = 3` matches `3` (any label: `|PQ| = 4`),
`y = 2x+1` matches `2x+1 = y`, matrices compare entry by entry, ratios when proportional.
A decimal stands for an exact value it rounds to (numbers.rounding_tolerance), entry by entry.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from mathrl.verify import exact, probe
from mathrl.verify.limits import MAX_PLUS_MINUS, TooLarge
from mathrl.verify.numbers import close, rounding_tolerance
from mathrl.verify.relations import flipped_interval, is_label
from mathrl.verify.tree import STRUCTURES, has_constant, is_approximate, symbols, walk
from mathrl.verify.worker import POOL, WorkerTimeout

FLOAT_RANGE = 1e300  # beyond this a float probe overflows
CACHE_SIZE = 8192  # symbolic verdicts kept (a GRPO group repeats the same answers)


@dataclass(frozen=True)
class Budget:
    rel_tol: float
    deadline: float  # time.monotonic() after which symbolic work is a timeout

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


# ---- symbolic tier: the worker, behind an LRU cache -------------------------------------------

class _Cache:
    def __init__(self, size: int):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key, value) -> None:
        with self.lock:
            self.data[key] = value
            while len(self.data) > self.size:
                self.data.popitem(last=False)


SYMBOLIC_CACHE = _Cache(CACHE_SIZE)


def symbolic_equal(a: tuple, b: tuple, rel_tol: float, approximate: bool, timeout: float) -> bool:
    """SymPy's verdict under a hard wall-clock limit (raises WorkerTimeout / WorkerCrashed)."""
    key = (a, b, rel_tol if approximate else 0.0)
    cached = SYMBOLIC_CACHE.get(key)
    if cached is not None:
        return cached
    reply = POOL.request({"a": a, "b": b, "rel_tol": rel_tol, "approximate": approximate}, timeout)
    verdict = bool(reply.get("equal", False))  # a SymPy error is "not shown equal"
    SYMBOLIC_CACHE.put(key, verdict)
    return verdict


# ---- scalars ----------------------------------------------------------------------------------

def _beyond_floats(rational, other: tuple) -> bool:
    """A rational past float range (a 309-digit number) against a constant the probe can
    evaluate (2\\sqrt{3}): they differ, and SymPy need not be asked (the probe cannot hold it)."""
    if abs(rational) < FLOAT_RANGE:
        return False
    value = probe.constant_value(other)
    return value is not None and abs(value) < FLOAT_RANGE / 2


def _decimal_text(node: tuple) -> str | None:
    """The literal of a lone decimal `1.6667` / `-0.707`, else None."""
    if node[0] == "neg":
        inner = _decimal_text(node[1])
        return None if inner is None else "-" + inner
    return node[1] if node[0] == "dec" else None


def _rounded(a: tuple, b: tuple, va, vb) -> bool:
    """A lone decimal against an exact constant (`1.6667` vs `\\frac53`, `0.7071` vs
    `\\frac{\\sqrt2}{2}`): equal when the exact value rounds to the digits written
    (numbers.rounding_tolerance); judged for each entry of a structure on its own."""
    for d, other, value in ((a, b, vb), (b, a, va)):
        text = _decimal_text(d)
        if text is None or is_approximate(other) or symbols(other):
            continue
        tolerance = rounding_tolerance(text)
        if tolerance is None:
            return False
        if value is not None:
            return abs(exact.value(d) - value) <= tolerance
        approx = probe.constant_value(other)
        return approx is not None and abs(approx.imag) < 1e-12 and \
            abs(float(exact.value(d)) - approx.real) <= float(tolerance) * (1 + 1e-9)
    return False


def scalar_equal(a: tuple, b: tuple, budget: Budget) -> bool:
    if a == b:
        return True
    if has_constant(a, "inf") or has_constant(b, "inf"):
        # ±inf is only itself: `\infty` and `-\infty` parse to one tree each (`+\infty`,
        # `-(\infty)` too), so two different trees with an infinity are different answers
        return False
    approximate = is_approximate(a) or is_approximate(b)
    va, vb = exact.try_value(a), exact.try_value(b)
    if va is not None and vb is not None:
        return close(va, vb, approximate, budget.rel_tol) or (approximate and _rounded(a, b, va, vb))
    if approximate and _rounded(a, b, va, vb):
        return True
    verdict = probe.agree(a, b, budget.rel_tol)
    if verdict is not None:
        return verdict
    if (va is None) != (vb is None) and _beyond_floats(va if vb is None else vb, b if vb is None else a):
        return False
    if budget.remaining() <= 0:
        raise WorkerTimeout()
    return symbolic_equal(a, b, budget.rel_tol, approximate, budget.remaining())


# ---- structures -------------------------------------------------------------------------------

def _variants(node: tuple) -> list[tuple]:
    """Every reading of an expression with `\\pm`: a ± b -> [a + b, a - b]."""
    tag = node[0]
    if tag in ("num", "dec", "sym", "const"):
        return [node]
    head = node[:2] if tag == "fn" else node[:1]
    options = [_variants(child) for child in node[len(head):]]
    out = [head + combo for combo in itertools.product(*options)]
    if tag == "pm":
        out = [("add",) + o[1:] for o in out] + [("sub",) + o[1:] for o in out]
    return out


def expand_pm(node: tuple) -> tuple:
    """Replace `\\pm` by the unordered list of both answers (in sets: both elements)."""
    count = sum(n[0] == "pm" for n in walk(node))
    if count == 0:
        return node
    if count > MAX_PLUS_MINUS:
        raise TooLarge("too many \\pm")
    if node[0] == "eq" and node[1][0] == "sym":
        return ("seq", "", "", tuple(("eq", node[1], v) for v in _variants(node[2])))
    if node[0] == "seq" and node[1] in ("{", ""):
        items = tuple(v for item in node[3] for v in _listed(expand_pm(item)))
        return ("seq", node[1], node[2], items)
    if node[0] in STRUCTURES:
        return node  # a ± inside a tuple or matrix has no single reading: compare as written
    variants = _variants(node)
    return ("seq", "", "", tuple(variants)) if len(variants) > 1 else variants[0]


def _listed(node: tuple) -> tuple:
    return node[3] if node[0] == "seq" and node[1] == "" else (node,)


def _match_unordered(xs, ys, budget: Budget) -> bool:
    if len(xs) != len(ys):
        return False
    unused = list(ys)
    for x in xs:
        hit = next((k for k, y in enumerate(unused) if value_equal(x, y, budget)), None)
        if hit is None:
            return False
        unused.pop(hit)
    return True


def _match_ordered(xs, ys, budget: Budget) -> bool:
    return len(xs) == len(ys) and all(value_equal(x, y, budget) for x, y in zip(xs, ys))


def _seq_seq(a: tuple, b: tuple, budget: Budget) -> bool:
    unordered_a, unordered_b = a[1] in ("{", ""), b[1] in ("{", "")
    if unordered_a and unordered_b:
        return _match_unordered(a[3], b[3], budget)
    brackets_a, brackets_b = (a[1], a[2]), (b[1], b[2])
    if not unordered_a and not unordered_b:
        # Two items: an interval, where ( vs [ is the answer. Longer: a tuple, either bracket.
        if len(a[3]) == 2 and brackets_a != brackets_b:
            return False
        return _match_ordered(a[3], b[3], budget)
    bare, other = (a, b) if a[1] == "" else (b, a)
    if bare[1] == "" and (other[1], other[2]) == ("(", ")"):  # "1, 2" for the point (1, 2)
        return _match_ordered(a[3], b[3], budget)
    return False


def _seq_other(seq: tuple, other: tuple, budget: Budget) -> bool:
    """A set or list of one element is that element: `\\{5\\}` == `5`, and so is a list that
    only restates it (`\\boxed{15\\frac{39}{40}}, or \\boxed{\\frac{639}{40}}`)."""
    return seq[1] in ("{", "") and len(seq[3]) >= 1 and all(
        value_equal(item, other, budget) for item in seq[3])


def _eq_eq(a: tuple, b: tuple, budget: Budget) -> bool:
    (la, ra), (lb, rb) = a[1:], b[1:]
    if value_equal(la, lb, budget) and value_equal(ra, rb, budget):
        return True
    if value_equal(la, rb, budget) and value_equal(ra, lb, budget):
        return True
    if any(n[0] in STRUCTURES for n in (la, ra, lb, rb)):
        return False
    # Same equation rearranged: 5x - 7y = -4 vs 5x - 7y + 4 = 0 (difference equal up to sign),
    # or scaled: x^2/4 + y^2/3 = 1 vs 3x^2 + 4y^2 = 12 (differences in a constant ratio).
    da, db = ("sub", la, ra), ("sub", lb, rb)
    if scalar_equal(da, db, budget) or scalar_equal(da, ("neg", db), budget):
        return True
    return (symbols(da) or symbols(db)) != set() and probe.constant_ratio(da, db) is True


def _eq_other(eq: tuple, other: tuple, budget: Budget) -> bool:
    """`x = 3` vs `3`: only when one side of the equation is a label (relations.is_label: `x`,
    `f(x)`, `|PQ|`, `AB:CD`). A calculation `3 + 4 = 7` states its result."""
    if is_label(eq[1]):
        return value_equal(eq[2], other, budget)
    if is_label(eq[2]):
        return value_equal(eq[1], other, budget)
    if eq[1][0] not in STRUCTURES and not symbols(eq[1]) and not symbols(eq[2]):
        return value_equal(eq[2], other, budget)
    return False


def _shape(matrix: tuple) -> tuple[int, int]:
    return len(matrix[1]), len(matrix[1][0])


def _matrix_matrix(a: tuple, b: tuple, budget: Budget) -> bool:
    return _shape(a) == _shape(b) and all(
        _match_ordered(ra, rb, budget) for ra, rb in zip(a[1], b[1]))


def _matrix_seq(m: tuple, seq: tuple, budget: Budget) -> bool:
    """A column or row vector written as a tuple: `\\begin{pmatrix}1\\\\2\\end{pmatrix}` vs (1, 2)."""
    rows = m[1]
    flat = [r[0] for r in rows] if len(rows[0]) == 1 else list(rows[0]) if len(rows) == 1 else None
    return flat is not None and seq[1] in ("(", "[", "") and _match_ordered(flat, seq[3], budget)


def _one_by_one(m: tuple, other: tuple, budget: Budget) -> bool:
    """A 1 x 1 matrix (a row times a column) is its entry."""
    return _shape(m) == (1, 1) and value_equal(m[1][0][0], other, budget)


def _ratio_ratio(a: tuple, b: tuple, budget: Budget) -> bool:
    """`2:3` == `4:6`: ratios are equal when proportional (a_i * b_0 == a_0 * b_i)."""
    xs, ys = a[3], b[3]
    if len(xs) != len(ys):
        return False
    if _match_ordered(xs, ys, budget):
        return True
    return all(scalar_equal(("mul", x, ys[0]), ("mul", xs[0], y), budget) for x, y in zip(xs, ys)) \
        and not scalar_equal(ys[0], ("num", 0), budget)


def _ratio_other(r: tuple, other: tuple, budget: Budget) -> bool:
    """`2:5` == `\\frac25`: a ratio of two parts is their quotient."""
    return len(r[3]) == 2 and value_equal(("div", r[3][0], r[3][1]), other, budget)


def _kind(node: tuple) -> str:
    if node[0] == "seq" and node[1] == ":":
        return "ratio"
    return node[0] if node[0] in STRUCTURES else "expr"


_PAIRS = {
    ("expr", "expr"): scalar_equal,
    ("seq", "seq"): _seq_seq,
    ("seq", "expr"): _seq_other,
    ("expr", "seq"): lambda a, b, t: _seq_other(b, a, t),
    ("eq", "eq"): _eq_eq,
    ("eq", "expr"): _eq_other,
    ("expr", "eq"): lambda a, b, t: _eq_other(b, a, t),
    ("eq", "seq"): _eq_other,
    ("seq", "eq"): lambda a, b, t: _eq_other(b, a, t),
    ("union", "union"): lambda a, b, t: _match_unordered(a[1], b[1], t),
    ("matrix", "matrix"): _matrix_matrix,
    ("matrix", "seq"): _matrix_seq,
    ("seq", "matrix"): lambda a, b, t: _matrix_seq(b, a, t),
    ("rel", "rel"): lambda a, b, t: a[1] == b[1] and _match_ordered(a[2], b[2], t),
    ("matrix", "expr"): _one_by_one,
    ("expr", "matrix"): lambda a, b, t: _one_by_one(b, a, t),
    ("eq", "ratio"): _eq_other,
    ("ratio", "eq"): lambda a, b, t: _eq_other(b, a, t),
    ("eq", "matrix"): _eq_other,
    ("matrix", "eq"): lambda a, b, t: _eq_other(b, a, t),
    ("ratio", "ratio"): _ratio_ratio,
    ("ratio", "expr"): _ratio_other,
    ("expr", "ratio"): lambda a, b, t: _ratio_other(b, a, t),
}


def _reading(node: tuple) -> tuple:
    """A chain is its last side; a range written with the variable negated is its interval."""
    if node[0] == "chain":
        return node[1][-1]
    if node[0] == "rel":
        return flipped_interval(node) or node
    return node


def value_equal(a: tuple, b: tuple, budget: Budget) -> bool:
    """Are two answer trees the same answer? Raises WorkerTimeout / TooLarge."""
    a, b = expand_pm(_reading(a)), expand_pm(_reading(b))
    rule = _PAIRS.get((_kind(a), _kind(b)))
    return rule is not None and rule(a, b, budget)


def answer_equal(pred: tuple, gold: tuple, budget: Budget) -> bool:
    """value_equal for a whole prediction and gold, with one asymmetry (math-verify's, see
    mathrl/verify/__init__.py): a gold chain `a+2z = 2z+a = 101` against a prediction that is not
    a chain is unequal (which side of such a gold is meant is unclear), while a predicted
    chain is read as its last side."""
    if gold[0] == "chain" and pred[0] != "chain":
        return False
    return value_equal(pred, gold, budget)
