"""SymPy equivalence of two answer trees. Runs only inside the worker process (worker.py).

SymPy objects are built node by node from the tree (tree.py) through SymPy's constructors;
no string from the model is ever handed to `sympify`, `parse_expr` or `eval`. Constant powers
and factorials are evaluated eagerly, which is safe because limits.check_bounds capped their
size before the tree left the parent process. Simplification itself can still be slow: that
is what the worker's wall-clock limit is for.
"""

from __future__ import annotations

import random
from fractions import Fraction

import sympy as sp

_CONSTANTS = {"pi": sp.pi, "e": sp.E, "i": sp.I, "inf": sp.oo}


def _root(x, n):
    # Odd roots of negative reals are real, as the probe and the exact tier read them
    # (real_root keeps the principal root for non-real arguments).
    if n.is_integer and n.is_odd:
        return sp.real_root(x, n)
    return sp.root(x, n)


def _pow(base, exp):
    # x^{p/q} with odd q is (real q-th root of x)^p, consistent with _root.
    if exp.is_Rational and not exp.is_integer and exp.q % 2 == 1:
        return _root(base, sp.Integer(exp.q)) ** exp.p
    return sp.Pow(base, exp)


_FUNCTIONS = {
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "cot": sp.cot, "sec": sp.sec, "csc": sp.csc,
    "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan,
    "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "exp": sp.exp,
    "log": lambda x, base=None: sp.log(x) if base is None else sp.log(x, base),
    "sqrt": sp.sqrt, "root": _root, "abs": sp.Abs, "floor": sp.floor, "ceil": sp.ceiling,
    "binom": sp.binomial,
}


def _rational(text: str) -> sp.Rational:
    f = Fraction(text)
    return sp.Rational(f.numerator, f.denominator)


_RULES = {
    "num": lambda n: sp.Integer(n[1]),
    "dec": lambda n: _rational(n[1]),
    "sym": lambda n: sp.Symbol(n[1]),
    "const": lambda n: _CONSTANTS[n[1]],
    "neg": lambda n: -build(n[1]),
    "add": lambda n: build(n[1]) + build(n[2]),
    "sub": lambda n: build(n[1]) - build(n[2]),
    "mul": lambda n: build(n[1]) * build(n[2]),
    "div": lambda n: build(n[1]) / build(n[2]),
    "pow": lambda n: _pow(build(n[1]), build(n[2])),
    "fact": lambda n: sp.factorial(build(n[1])),
    "fn": lambda n: _FUNCTIONS[n[1]](*[build(a) for a in n[2:]]),
}


def build(node) -> sp.Expr:
    """SymPy expression of an expression tree (lists or tuples: it arrives as JSON)."""
    return _RULES[node[0]](node)


def _points(names: list[sp.Symbol], count: int = 4) -> list[dict]:
    rng = random.Random(0x5EED)
    return [{s: sp.Rational(rng.choice((-1, 1)) * rng.randint(300, 2700), 1000) for s in names}
            for _ in range(count)]


def _numerically_equal(a: sp.Expr, b: sp.Expr, rel_tol: float, digits: int = 40) -> bool:
    """Agreement at random points in `digits`-digit arithmetic (beats float cancellation)."""
    names = sorted(a.free_symbols | b.free_symbols, key=str)
    tol = sp.Float(rel_tol, digits) if rel_tol > 0 else sp.Float(10) ** (-(digits - 10))
    usable = 0
    for point in _points(names) if names else [{}]:
        va, vb = a.evalf(digits, subs=point), b.evalf(digits, subs=point)
        if not (va.is_number and vb.is_number) or va.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            continue
        if vb.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            continue
        if sp.Abs(va - vb) > tol * max(sp.Abs(va), sp.Abs(vb), sp.Integer(1)):
            return False
        usable += 1
    return usable > 0


def equal(a_tree, b_tree, rel_tol: float, approximate: bool) -> bool:
    """Is a == b? Exact: the difference simplifies to 0, or agrees to ~30 digits at random
    points. Approximate (a decimal literal on a side): agreement within rel_tol."""
    a, b = build(a_tree), build(b_tree)
    if approximate:
        return _numerically_equal(a, b, rel_tol)
    diff = a - b
    if diff == 0 or sp.simplify(diff) == 0:
        return True
    return _numerically_equal(a, b, 0.0)


# ---- the worker process: one JSON request per line on stdin, one JSON verdict per line ------

def serve() -> None:
    """Answer requests until stdin closes (the parent exited or closed us)."""
    import json
    import sys

    from mathrl.verify.worker import confine_worker

    confine_worker()
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            reply = {"equal": equal(request["a"], request["b"], request["rel_tol"],
                                    request["approximate"])}
        except Exception as e:  # noqa: BLE001 - any SymPy failure is a verdict, not a crash
            reply = {"error": f"{type(e).__name__}: {e}"[:300]}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    serve()
