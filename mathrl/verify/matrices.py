"""Matrix expressions evaluated while parsing: `A + B`, `2A`, `A B`, `A / 2`, `-A`, `A^2`, `A^T`.

An answer written as an operation on matrices is the matrix it computes, so that it compares
entry by entry with the value (compare.py). Entries stay answer trees (`a`, `\\sqrt 2`); constant
exact entries are folded to numbers, so products and powers do not grow trees. Shapes must
agree (else Unparsable) and the work is bounded (MAX_MATRIX_WORK, MAX_MATRIX_POWER, TooLarge).
"""

from __future__ import annotations

from mathrl.verify import exact
from mathrl.verify.limits import (MAX_MATRIX_NODES, MAX_MATRIX_POWER, MAX_MATRIX_WORK, TooLarge, Unparsable,
                                  check_bounds)
from mathrl.verify.tree import STRUCTURES, children


_FOLD_NODES = 1024  # an entry built from folded numbers is small; a bigger one has symbols


def _constant(node: tuple) -> bool:
    """No variable, no decimal (a rounded entry keeps its digits), and small: worth folding."""
    stack, count = [node], 0
    while stack:
        n = stack.pop()
        count += 1
        if count > _FOLD_NODES or n[0] in ("sym", "dec"):
            return False
        stack.extend(children(n))
    return True


def _fold(node: tuple) -> tuple:
    """A constant exact entry as a number (`1*0 + 2*1` -> 2); anything else as it is."""
    if node[0] in ("num", "sym", "const", "dec") or not _constant(node):
        return node
    check_bounds(node)  # before any arithmetic: a power tower times a matrix is TooLarge
    value = exact.try_value(node)
    if value is None:
        return node
    magnitude = abs(value)
    out = ("num", magnitude.numerator) if magnitude.denominator == 1 else \
        ("div", ("num", magnitude.numerator), ("num", magnitude.denominator))
    return ("neg", out) if value < 0 else out


def _shape(m: tuple) -> tuple[int, int]:
    return len(m[1]), len(m[1][0])


def _entrywise(rows, fn) -> tuple:
    return ("matrix", tuple(tuple(_fold(fn(x)) for x in row) for row in rows))


def _check_size(m: tuple) -> tuple:
    """Subtrees are shared, so building is cheap, but a walk of the entries (probe, SymPy)
    costs their unshared size: count it, stopping at the limit."""
    stack, count = [x for row in m[1] for x in row], 0
    while stack:
        count += 1
        if count > MAX_MATRIX_NODES:
            raise TooLarge("matrix entries too large")
        stack.extend(children(stack.pop()))
    return m


def _product(a: tuple, b: tuple) -> tuple:
    (n, k), (k2, m) = _shape(a), _shape(b)
    if k != k2:
        raise Unparsable("matrix shapes do not agree")
    if n * k * m > MAX_MATRIX_WORK:
        raise TooLarge("matrix product too large")
    rows = []
    for i in range(n):
        row = []
        for j in range(m):
            total = ("mul", a[1][i][0], b[1][0][j])
            for t in range(1, k):
                total = ("add", total, ("mul", a[1][i][t], b[1][t][j]))
            row.append(_fold(total))
        rows.append(tuple(row))
    return _check_size(("matrix", tuple(rows)))


def _power(m: tuple, exponent: tuple) -> tuple:
    if exponent == ("sym", "T"):  # transpose
        return ("matrix", tuple(zip(*m[1])))
    n, k = _shape(m)
    if exponent[0] != "num" or not 1 <= exponent[1] <= MAX_MATRIX_POWER or n != k:
        raise Unparsable("matrix power")
    out = m
    for _ in range(exponent[1] - 1):
        out = _product(out, m)
    return out


def combine(tag: str, operands: tuple) -> tuple:
    """The matrix that `tag` applied to operands (at least one of them a matrix) computes."""
    if any(op[0] in STRUCTURES and op[0] != "matrix" for op in operands):
        raise Unparsable(f"{tag} of a structure")
    a = operands[0]
    if tag == "pos":
        return (tag, a)
    if tag == "neg":
        return _entrywise(a[1], lambda x: ("neg", x))
    b = operands[1]
    if tag == "pow" and a[0] == "matrix" and b[0] != "matrix":
        return _power(a, b)
    if tag in ("add", "sub") and a[0] == b[0] == "matrix":
        if _shape(a) != _shape(b):
            raise Unparsable("matrix shapes do not agree")
        return ("matrix", tuple(tuple(_fold((tag, x, y)) for x, y in zip(ra, rb))
                                for ra, rb in zip(a[1], b[1])))
    if tag == "mul" and a[0] == b[0] == "matrix":
        return _product(a, b)
    if tag == "mul":  # a scalar times a matrix, either side
        scalar, m = (a, b) if b[0] == "matrix" else (b, a)
        return _entrywise(m[1], lambda x: ("mul", scalar, x))
    if tag == "div" and a[0] == "matrix" and b[0] != "matrix":
        return _entrywise(a[1], lambda x: ("div", x, b))
    raise Unparsable(f"{tag} of a matrix")
