"""Safe arithmetic on model text, the public helper for grader hooks.

    from mathrl.verify.expression import ExpressionError, parse_expression

    expr = parse_expression("(94 * 4) - 61 - 6")   # ExpressionError on anything else
    expr.value()        # Fraction(309, 1): exact, rational
    expr.numbers()      # [Fraction(94), Fraction(4), Fraction(61), Fraction(6)]
    expr.operations()   # {"mul", "sub"}

Model text is hostile input: `eval`, `sympy.sympify` and `parse_expr` run Python on it
(reasoning-gym's Countdown scorer calls `parse_expr` on the raw answer). This goes through the
answer checker's own road instead: normalisation, the whitelisted lexer and parser (no code,
no names of Python objects), the size limits checked before anything is evaluated (an
exponent bomb is "too_large", not a hang), and exact `Fraction` arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from mathrl.verify.exact import NotRational, value
from mathrl.verify.limits import MAX_ANSWER_CHARS, TooLarge, Unparsable, check_bounds
from mathrl.verify.normalize import normalize
from mathrl.verify.parser import parse
from mathrl.verify.tree import STRUCTURES, walk

__all__ = ["Expression", "ExpressionError", "parse_expression"]


class ExpressionError(ValueError):
    """Text that is not a bounded expression; `reason` is "unparsable", "too_large",
    "not_an_expression" or "not_rational" (the checker's vocabulary, usable as a verdict)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Expression:
    """A parsed, size-checked expression: an answer tree (mathrl/verify/tree.py), inert data."""

    tree: tuple

    def value(self) -> Fraction:
        """The exact rational value; ExpressionError("not_rational") for symbols, pi, sqrt(2),
        division by zero."""
        try:
            return value(self.tree)
        except NotRational as e:
            raise ExpressionError("not_rational", str(e)) from None

    def numbers(self) -> list[Fraction]:
        """The number literals as written, left to right (a unary minus is an operation, so
        "-3" gives [3])."""
        return [Fraction(n[1]) for n in walk(self.tree) if n[0] in ("num", "dec")]

    def operations(self) -> set[str]:
        """The tags of every operation node: add, sub, mul, div, pow, neg, fact, fn:<name>."""
        ops = set()
        for n in walk(self.tree):
            if n[0] == "fn":
                ops.add(f"fn:{n[1]}")
            elif n[0] not in ("num", "dec"):
                ops.add(n[0])
        return ops


def parse_expression(text: str) -> Expression:
    """Parse one arithmetic expression (plain text or LaTeX) under the checker's limits."""
    if len(text) > MAX_ANSWER_CHARS:
        raise ExpressionError("too_large", f"{len(text)} characters (limit {MAX_ANSWER_CHARS})")
    try:
        tree = parse(normalize(text))
        check_bounds(tree)
    except TooLarge as e:
        raise ExpressionError("too_large", str(e)) from None
    except (Unparsable, RecursionError) as e:
        raise ExpressionError("unparsable", str(e)) from None
    if tree[0] in STRUCTURES:
        raise ExpressionError("not_an_expression", f"a {tree[0]}, not one expression")
    return Expression(tree)
