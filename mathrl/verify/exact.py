"""Exact rational evaluation of constant answer trees: `\\frac{3}{2}` == `1.5` == `3/2` == `6/4`.

Most MATH answers are rational constants written in some LaTeX form. Evaluating them with
`fractions.Fraction` decides equality exactly, in microseconds, without SymPy. Anything that
is not rational (a symbol, `\\pi`, `\\sqrt{2}`, `i`) raises NotRational and the caller moves on
to the next tier. Callers run limits.check_bounds first, so no operation here can explode.
"""

from __future__ import annotations

from fractions import Fraction


class NotRational(ValueError):
    """The tree has no (finite, real) rational value."""


def _int_root(n: int, k: int) -> int | None:
    """The exact k-th root of n >= 0, or None (Newton on integers: no float rounding)."""
    if n < 2:
        return n
    x = 1 << ((n.bit_length() + k - 1) // k)  # >= the root
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            break
        x = y
    return x if x**k == n else None


def _root(value: Fraction, k: int) -> Fraction:
    """Exact real k-th root (odd roots of negatives are real: `\\sqrt[3]{-8}` = -2)."""
    if k <= 0:
        raise NotRational("root index")
    if value < 0:
        if k % 2 == 0:
            raise NotRational("even root of a negative")
        return -_root(-value, k)
    num, den = _int_root(value.numerator, k), _int_root(value.denominator, k)
    if num is None or den is None:
        raise NotRational("irrational root")
    return Fraction(num, den)


def _integer(value: Fraction) -> int:
    if value.denominator != 1:
        raise NotRational("not an integer")
    return value.numerator


def _pow(base: Fraction, exp: Fraction) -> Fraction:
    if base == 0 and exp <= 0:
        raise NotRational("0 to a non-positive power")
    if exp.denominator == 1:
        return base**exp.numerator
    if exp.denominator > 64:
        raise NotRational("root index")
    return _root(base, exp.denominator) ** exp.numerator


def _div(a: Fraction, b: Fraction) -> Fraction:
    if b == 0:
        raise NotRational("division by zero")
    return a / b


def _factorial(n: int) -> int:
    if n < 0:
        raise NotRational("factorial of a negative")
    out = 1
    for k in range(2, n + 1):
        out *= k
    return out


def _binom(n: int, k: int) -> int:
    if n < 0 or k < 0 or k > n:
        return 0
    return _factorial(n) // (_factorial(k) * _factorial(n - k))


def _floor(x: Fraction) -> Fraction:
    return Fraction(x.numerator // x.denominator)


_FUNCTIONS = {
    "sqrt": lambda args: _root(args[0], 2),
    "root": lambda args: _root(args[0], _integer(args[1])),
    "abs": lambda args: abs(args[0]),
    "floor": lambda args: _floor(args[0]),
    "ceil": lambda args: -_floor(-args[0]),
    "binom": lambda args: Fraction(_binom(_integer(args[0]), _integer(args[1]))),
}

_RULES = {
    "num": lambda n: Fraction(n[1]),
    "dec": lambda n: Fraction(n[1]),
    "neg": lambda n: -value(n[1]),
    "add": lambda n: value(n[1]) + value(n[2]),
    "sub": lambda n: value(n[1]) - value(n[2]),
    "mul": lambda n: value(n[1]) * value(n[2]),
    "div": lambda n: _div(value(n[1]), value(n[2])),
    "pow": lambda n: _pow(value(n[1]), value(n[2])),
    "fact": lambda n: Fraction(_factorial(_integer(value(n[1])))),
}


def value(node: tuple) -> Fraction:
    """The exact rational value of a constant tree; NotRational if it has none."""
    rule = _RULES.get(node[0])
    if rule is not None:
        return rule(node)
    if node[0] == "fn" and node[1] in _FUNCTIONS:
        return _FUNCTIONS[node[1]]([value(arg) for arg in node[2:]])
    raise NotRational(node[0])


def try_value(node: tuple) -> Fraction | None:
    try:
        return value(node)
    except NotRational:
        return None
