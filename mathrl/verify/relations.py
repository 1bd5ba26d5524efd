"""Relations read as answers: ranges as intervals, chains of `=` / `\\approx`, labels, ratios.

Used by the parser (building the tree) and by compare.py (reading a tree as a value):
- `x > 2` -> (2, inf), `-2 <= x < 7` -> [-2, 7), `x != 2` -> a union; `-y > -2` and
  `3 - t < 1` (one variable, rational linear) are solved into the same intervals;
- a chain `x = 2+3 = 5` answers its last side; sides after the first `\\approx` are roundings of
  the side before it (`y = \\frac12 \\approx 0.5` answers 1/2, `\\frac{\\sqrt2}{2} \\approx 0.707` is
  the exact value); a chain whose first side is no label stays a ("chain", sides) node, which
  compare.answer_equal reads asymmetrically (see mathrl/verify/README.md);
- a label is what a model writes before `=` to name the result: `x`, `a_n`, `f(x)`, `AB`, `|PQ|`,
  `m\\angle ABC`, `V_1 : V_2`, `(x, y)`.
"""

from __future__ import annotations

from fractions import Fraction

from mathrl.verify import exact
from mathrl.verify.limits import TooLarge, Unparsable, check_bounds
from mathrl.verify.tree import symbols

_INF = ("const", "inf")
_CLOSED = {"<": False, "<=": True, ">": False, ">=": True}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
_LETTER_CONSTANTS = frozenset({("const", "e"), ("const", "i")})  # letters of a name: `Area`


def is_label(node: tuple) -> bool:
    """Is `node` a name for a result rather than a computation (see the module docstring)?"""
    tag = node[0]
    if tag == "sym":
        return True
    if tag == "mul":
        parts = (node[1], node[2])
        return all(is_label(p) or p in _LETTER_CONSTANTS for p in parts) and bool(symbols(node))
    if tag == "fn" and node[1] == "abs":
        return is_label(node[2])
    return tag == "seq" and node[1] in ("(", ":", "") and all(is_label(x) for x in node[3])


def interval(ops: tuple[str, ...], operands: tuple) -> tuple | None:
    """`x > 2` -> (2, inf); `-2 <= x < 7` -> [-2, 7). None when it is not one variable's range."""
    if ops == ("!=",) and (operands[0][0] == "sym") != (operands[1][0] == "sym"):
        bound = operands[1] if operands[0][0] == "sym" else operands[0]  # x != b: all but b
        return ("union", (("seq", "(", ")", (("neg", _INF), bound)), ("seq", "(", ")", (bound, _INF))))
    if any(op not in _CLOSED for op in ops):
        return None
    if len(ops) == 2 and operands[1][0] == "sym" and ops[0][0] == ops[1][0]:
        lo, hi = (operands[0], operands[2]) if ops[0][0] == "<" else (operands[2], operands[0])
        lo_closed, hi_closed = (_CLOSED[ops[0]], _CLOSED[ops[1]]) if ops[0][0] == "<" else \
            (_CLOSED[ops[1]], _CLOSED[ops[0]])
    elif len(ops) == 1 and (operands[0][0] == "sym") != (operands[1][0] == "sym"):
        var_left = operands[0][0] == "sym"
        bound = operands[1] if var_left else operands[0]
        upper = (ops[0][0] == "<") == var_left  # x < b, or b > x
        lo, hi = (("neg", _INF), bound) if upper else (bound, _INF)
        lo_closed, hi_closed = (False, _CLOSED[ops[0]]) if upper else (_CLOSED[ops[0]], False)
    else:
        return None
    return ("seq", "[" if lo_closed else "(", "]" if hi_closed else ")", (lo, hi))


def equation_chain(ops: list[str], operands: list[tuple]) -> tuple:
    """The answer of `a = b = ... \\approx ...` (ops are "=" and "approx")."""
    cut = ops.index("approx") + 1 if "approx" in ops else len(operands)
    exact_sides = operands[:cut]
    if len(exact_sides) == 1:
        if not is_label(exact_sides[0]):
            return exact_sides[0]  # `\frac{\sqrt2}{2} \approx 0.707`: the exact value
        exact_sides = operands[:2]  # `x \approx 3.14`: the rounded value is all there is
    if len(exact_sides) == 2:
        return ("eq", exact_sides[0], exact_sides[1])
    if is_label(exact_sides[0]):
        return ("eq", exact_sides[0], exact_sides[-1])  # `x = 2+3 = 5`
    return ("chain", tuple(exact_sides))


def ratio(items: list[tuple]) -> tuple:
    """`3:7`, `AB:CD`, `1:2:3`: an ordered ratio (compare.py: equal when proportional)."""
    if any(item[0] in ("seq", "union", "eq", "rel", "matrix", "chain") for item in items):
        raise Unparsable("ratio of structures")
    return ("seq", ":", ":", tuple(items))


# ---- linear inequalities in one variable ------------------------------------------------------

def _substitute(node: tuple, name: str, value: tuple) -> tuple:
    if node == ("sym", name):
        return value
    if node[0] in ("num", "dec", "sym", "const"):
        return node
    head = node[:2] if node[0] == "fn" else node[:1]
    return head + tuple(_substitute(child, name, value) for child in node[len(head):])


def _node(value: Fraction) -> tuple:
    magnitude = abs(value)
    node = ("num", magnitude.numerator) if magnitude.denominator == 1 else \
        ("div", ("num", magnitude.numerator), ("num", magnitude.denominator))
    return ("neg", node) if value < 0 else node


def _linear(node: tuple, name: str) -> tuple[Fraction, Fraction] | None:
    """(a, b) with node == a*name + b for every value of name, if a and b are rational."""
    # Two points fix a and b; two more, off the integers and negative, rule out |x|, floor, x^2.
    points = (Fraction(0), Fraction(1), Fraction(-3, 2), Fraction(5, 7))
    values = []
    for k in points:
        at = _substitute(node, name, _node(k))
        try:
            check_bounds(at)  # `(x^{10000})^{10000}` is bounded with x free, not with x = 5/7
        except TooLarge:
            return None
        values.append(exact.try_value(at))
    if any(v is None for v in values):
        return None
    b, a = values[0], values[1] - values[0]
    return (a, b) if a != 0 and all(v == a * k + b for k, v in zip(points, values)) else None


def solved_interval(node: tuple) -> tuple | None:
    """("rel", ops, operands) with one variable, linear with rational coefficients (`-y > -2`,
    `3 - t < 1`, `-4 < 2x - 2 \\le 6`), as the interval of that variable; else None."""
    ops, operands = node[1], node[2]
    names = symbols(node)
    if len(names) != 1 or len(ops) > 2 or any(op not in _CLOSED for op in ops):
        return None
    name = next(iter(names))
    var = ("sym", name)
    if len(ops) == 1:
        line = _linear(("sub", operands[0], operands[1]), name)  # a*v + b  op  0
        if line is None:
            return None
        (a, b), op = line, ops[0]
        return interval((op if a > 0 else _FLIP[op],), (var, _node(-b / a)))
    line = _linear(operands[1], name)
    bounds = [exact.try_value(operands[0]), exact.try_value(operands[2])]
    if line is None or None in bounds or ops[0][0] != ops[1][0]:
        return None
    (a, b), ends = line, [_node((v - b) / line[0]) for v in bounds]
    if a > 0:
        return interval(ops, (ends[0], var, ends[1]))
    return interval((_FLIP[ops[0]], _FLIP[ops[1]]), (ends[0], var, ends[1]))
