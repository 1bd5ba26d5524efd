"""Relations read as answers: ranges as intervals, chains of `=` / `\\approx`, labels, ratios.

Used by the parser (building the tree) and by compare.py (reading a tree as a value):
- `x > 2` -> (2, inf), `-2 <= x < 7` -> [-2, 7), `x != 2` -> a union; the sign-flipped
  `-y > -2` is the range y < 2 (but an inequality is never solved: see flipped_interval);
- a chain `x = 2+3 = 5` answers its last side; sides after the first `\\approx` are roundings of
  the side before it (`y = \\frac12 \\approx 0.5` answers 1/2, `\\frac{\\sqrt2}{2} \\approx 0.707` is
  the exact value); a chain whose first side is no label stays a ("chain", sides) node, which
  compare.answer_equal reads asymmetrically (see mathrl/verify/__init__.py);
- a label is what a model writes before `=` to name the result: `x`, `a_n`, `f(x)`, `AB`, `|PQ|`,
  `m\\angle ABC`, `V_1 : V_2`, `(x, y)`.
"""

from __future__ import annotations

from mathrl.verify.limits import Unparsable
from mathrl.verify.tree import STRUCTURES, symbols

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
    if any(item[0] in STRUCTURES for item in items):
        raise Unparsable("ratio of structures")
    return ("seq", ":", ":", tuple(items))


# ---- sign-flipped ranges ----------------------------------------------------------------------

def _negated(node: tuple) -> tuple:
    return node[1] if node[0] == "neg" else ("neg", node)


def flipped_interval(node: tuple) -> tuple | None:
    """("rel", ops, operands) written with the variable negated (`-y > -2`, `-3 < -t \\le 1`) as
    the interval of the variable; else None.

    Only the sign flip: `3 - t < 1` is not solved into t > 2, so that a model that echoes the
    question's inequality is not paid for the range it was asked to find.
    """
    ops, operands = node[1], node[2]
    variables = [o for o in operands if o[0] == "neg" and o[1][0] == "sym"]
    if len(variables) != 1 or any(op not in _FLIP for op in ops) or \
            any(symbols(o) for o in operands if o is not variables[0]):
        return None
    flipped = tuple(o[1] if o is variables[0] else _negated(o) for o in operands)
    return interval(tuple(_FLIP[op] for op in ops), flipped)
