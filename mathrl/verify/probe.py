"""Numeric probing: evaluate both answers at random points with complex floats.

This is the "agrees at random points within a tolerance" test of the issue, done in-process
on the answer tree, so that most symbolic comparisons (`\\frac{\\sqrt{3}}{3}` vs
`\\frac{1}{\\sqrt 3}`, `2x+2` vs `2(x+1)`) finish in microseconds without SymPy.

Float evaluation cannot hang: every node costs O(1) (check_bounds has capped factorials and
exponents) and the tree is small. It can be *inexact*, so the verdict has three values:
True (agree at every point, up to rounding noise or rel_tol), False (disagree by far more
than any rounding could explain), None (inconclusive: overflow, poles, cancellation) - and
None sends the pair on to SymPy in the worker process.
"""

from __future__ import annotations

import cmath
import math
import random
from fractions import Fraction
from functools import lru_cache

from mathrl.verify import exact
from mathrl.verify.limits import MAX_FACTORIAL
from mathrl.verify.tree import is_approximate, symbols

POINTS = 4  # random points per comparison
NOISE = 1e-11  # relative rounding noise allowed, times the largest intermediate magnitude
DECISIVE = 1e-7  # a difference above this (times the largest magnitude) is not rounding
PRECISION = 1e-6  # a point whose noise exceeds this fraction of the values says nothing


class _Undefined(ArithmeticError):
    """No usable value at this point (pole, overflow, domain error)."""


class _Evaluator:
    def __init__(self, env: dict[str, complex]):
        self.env = env
        self.scale = 1.0  # largest |intermediate value|: bounds the rounding error

    def __call__(self, node: tuple) -> complex:
        try:
            v = self.eval(node)
        except (ArithmeticError, ValueError) as e:
            raise _Undefined(str(e)) from None
        if not cmath.isfinite(v):
            raise _Undefined("not finite")
        return v

    def eval(self, node: tuple) -> complex:
        v = _RULES[node[0]](self, node)
        if v != v or abs(v) == math.inf:  # nan or inf anywhere: no verdict at this point
            raise _Undefined("not finite")
        if v.imag == 0:  # -0.0j would put log / roots of negatives on the wrong side of the cut
            v = complex(v.real, 0.0)
        self.scale = max(self.scale, abs(v))
        return v


def _real(v: complex) -> float:
    if abs(v.imag) > 1e-12 * max(1.0, abs(v.real)):
        raise _Undefined("needs a real number")
    return v.real


def _pow(base: complex, exp: complex) -> complex:
    if exp.imag == 0 and exp.real == int(exp.real) and abs(exp.real) <= 10_000:
        if base == 0 and exp.real < 0:
            raise _Undefined("0 to a negative power")
        return base ** int(exp.real)  # exact repeated multiplication, no branch cut
    if base == 0:
        if exp.real > 0:
            return 0j
        raise _Undefined("0 to a non-positive power")
    return cmath.exp(exp * cmath.log(base))


def _root(x: complex, n: complex) -> complex:
    k = _real(n)
    if x.imag == 0 and x.real < 0 and k == int(k) and int(k) % 2 == 1:
        return -((-x.real) ** (1.0 / k))  # odd root of a negative real is real
    return _pow(x, 1.0 / k)


@lru_cache(maxsize=4096)
def _odd_root_index(exponent: tuple) -> int | None:
    """q when the exponent is a constant rational p/q with odd q > 1, else None."""
    value = exact.try_value(exponent)
    if value is None or value.denominator == 1 or value.denominator % 2 == 0:
        return None
    return value.denominator


def _pow_node(ev: "_Evaluator", node: tuple) -> complex:
    """a^b; a negative real to a rational power with odd denominator is a real root:
    (-8)^{1/3} = -2, as in the exact tier and symbolic.py."""
    base, exp = ev.eval(node[1]), ev.eval(node[2])
    q = _odd_root_index(node[2])
    if q is not None and base.imag == 0 and base.real < 0:
        return _pow(_root(base, complex(q)), complex(round(exp.real * q)))
    return _pow(base, exp)


def _factorial(x: complex) -> complex:
    r = _real(x)
    if r > MAX_FACTORIAL:  # a symbolic argument can still be huge at a probe point
        raise _Undefined("factorial too large")
    if r == int(r):
        if r < 0:
            raise _Undefined("factorial of a negative integer")
        return complex(math.factorial(int(r)))
    return complex(math.gamma(r + 1.0))


def _binom(n: complex, k: complex) -> complex:
    rn, rk = _real(n), _real(k)
    if rn > MAX_FACTORIAL:
        raise _Undefined("binomial too large")
    if rn == int(rn) and rk == int(rk):
        return complex(math.comb(int(rn), int(rk)) if 0 <= rk <= rn else 0)
    return complex(math.gamma(rn + 1) / (math.gamma(rk + 1) * math.gamma(rn - rk + 1)))


def _log(x: complex, base: complex | None = None) -> complex:
    if x == 0:
        raise _Undefined("log 0")
    return cmath.log(x) / cmath.log(base) if base is not None else cmath.log(x)


_FUNCTIONS = {
    "sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan,
    "cot": lambda x: 1 / cmath.tan(x), "sec": lambda x: 1 / cmath.cos(x),
    "csc": lambda x: 1 / cmath.sin(x),
    "arcsin": cmath.asin, "arccos": cmath.acos, "arctan": cmath.atan,
    "sinh": cmath.sinh, "cosh": cmath.cosh, "tanh": cmath.tanh,
    "exp": cmath.exp, "log": _log, "sqrt": cmath.sqrt, "root": _root, "abs": lambda x: complex(abs(x)),
    "floor": lambda x: complex(math.floor(_real(x))), "ceil": lambda x: complex(math.ceil(_real(x))),
    "binom": _binom,
}
_CONSTANTS = {"pi": complex(math.pi), "e": complex(math.e), "i": 1j}

_RULES = {
    "num": lambda ev, n: complex(n[1]),
    "dec": lambda ev, n: complex(float(Fraction(n[1]))),
    "sym": lambda ev, n: ev.env[n[1]],
    "const": lambda ev, n: _constant(n[1]),
    "neg": lambda ev, n: -ev.eval(n[1]),
    "add": lambda ev, n: ev.eval(n[1]) + ev.eval(n[2]),
    "sub": lambda ev, n: ev.eval(n[1]) - ev.eval(n[2]),
    "mul": lambda ev, n: ev.eval(n[1]) * ev.eval(n[2]),
    "div": lambda ev, n: ev.eval(n[1]) / ev.eval(n[2]),
    "pow": _pow_node,
    "fact": lambda ev, n: _factorial(ev.eval(n[1])),
    "fn": lambda ev, n: _FUNCTIONS[n[1]](*[ev.eval(a) for a in n[2:]]),
}


def _constant(name: str) -> complex:
    if name == "inf":
        raise _Undefined("infinity")
    return _CONSTANTS[name]


def _points(names: list[str]) -> list[dict[str, complex]]:
    """Reproducible random points; values in ±[0.3, 2.7] avoid the usual poles 0 and ±1."""
    rng = random.Random(0x5EED)
    if not names:
        return [{}]
    return [{name: complex(rng.choice((-1, 1)) * rng.uniform(0.3, 2.7)) for name in names}
            for _ in range(POINTS)]


def agree(a: tuple, b: tuple, rel_tol: float) -> bool | None:
    """Do the expressions a and b agree numerically? True / False / None (inconclusive).

    rel_tol applies only when a side contains a decimal literal (a rounded value); exact
    forms must agree up to float rounding noise.
    """
    tol = rel_tol if is_approximate(a) or is_approximate(b) else 0.0
    usable = 0
    for ev, va, vb in _paired_values(a, b):
        diff, size, noise = abs(va - vb), max(abs(va), abs(vb)), NOISE * ev.scale
        if diff > max(DECISIVE * ev.scale, tol * size):
            return False  # one clear counterexample is enough
        if noise > PRECISION * size:
            continue  # cancellation ate the digits (10^{300}\sqrt2 + 1 - 10^{300}\sqrt2): no info
        if diff > max(noise, tol * size):
            return None  # a small difference floats cannot explain or confirm: ask SymPy
        usable += 1
    needed = 1 if not (symbols(a) | symbols(b)) else min(2, POINTS)
    return True if usable >= needed else None


def _paired_values(a: tuple, b: tuple):
    """(evaluator, a's value, b's value) at each probe point where both are defined."""
    for env in _points(sorted(symbols(a) | symbols(b))):
        ev = _Evaluator(env)
        try:
            va, vb = ev(a), ev(b)
        except _Undefined:
            continue
        yield ev, va, vb


def constant_value(node: tuple) -> complex | None:
    """The float value of a tree without variables, or None."""
    if symbols(node):
        return None
    try:
        return _Evaluator({})(node)
    except _Undefined:
        return None


def constant_ratio(a: tuple, b: tuple) -> bool | None:
    """Is a / b the same nonzero constant at every point? (Two equations a = 0 and b = 0 that
    differ by a factor: `x^2/4 + y^2/3 - 1` and `3x^2 + 4y^2 - 12`.) True / False / None."""
    ratios = []
    for ev, va, vb in _paired_values(a, b):
        if abs(vb) <= DECISIVE * ev.scale or abs(va) <= DECISIVE * ev.scale:
            return None  # a point on the curve: the ratio says nothing
        ratios.append(va / vb)
    if len(ratios) < 2:
        return None
    first = ratios[0]
    return all(abs(r - first) <= 1e-9 * max(abs(r), abs(first)) for r in ratios[1:])
