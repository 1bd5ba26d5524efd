"""The answer tree: what the parser produces and every later stage consumes.

Nodes are plain tuples of str / int / tuples, tagged by their first element. That makes them
hashable (cache keys), JSON-serialisable (the SymPy worker receives them over a pipe) and
inert: a tree can describe math and nothing else.

Expressions
    ("num", int)                 integer literal
    ("dec", str)                 decimal / scientific literal, e.g. "1.25", "1.5e3" (an approximation)
    ("sym", name)                variable: "x", "x_1", "theta"
    ("const", name)              "pi", "e", "i" (imaginary unit), "inf"
    ("neg", a)                   -a
    ("add"|"sub"|"mul"|"div"|"pow", a, b)
    ("pm", a, b)                 a ± b (expanded into two answers before comparison)
    ("fact", a)                  a!
    ("fn", name, arg, ...)       sin, cos, ..., sqrt, root (arg, n), log (arg, base), abs,
                                 floor, ceil, binom (n, k)
Structures (only at the top of an answer or inside another structure)
    ("seq", open, close, items)  "(1,2)", "[a,b)", "\\{1,2\\}" (open="{"), bare "1, 2" (open=""),
                                 ratio "3:7" (open=close=":")
    ("union", items)             interval union
    ("eq", lhs, rhs)             equation
    ("chain", sides)             `a+2z = 2z+a = 101`: equal sides, the last one the result
    ("rel", ops, operands)       inequality chain, e.g. ops=("<", "<=")
    ("matrix", rows)             rows: tuple of tuples of nodes
"""

from __future__ import annotations

from collections.abc import Iterator

STRUCTURES = frozenset({"seq", "union", "eq", "rel", "matrix", "chain"})


def children(node) -> Iterator[tuple]:
    """The direct sub-nodes of any node."""
    tag = node[0]
    if tag in ("num", "dec", "sym", "const"):
        return
    if tag == "seq":
        yield from node[3]
    elif tag in ("union", "chain"):
        yield from node[1]
    elif tag == "rel":
        yield from node[2]
    elif tag == "matrix":
        for row in node[1]:
            yield from row
    elif tag == "fn":
        yield from node[2:]
    else:
        yield from node[1:]


def walk(node) -> Iterator[tuple]:
    """Every node of the tree, parents first (depth is bounded by the parser)."""
    yield node
    for child in children(node):
        yield from walk(child)


def symbols(node) -> set[str]:
    return {n[1] for n in walk(node) if n[0] == "sym"}


def has_tag(node, tag: str) -> bool:
    return any(n[0] == tag for n in walk(node))


def is_approximate(node) -> bool:
    """A decimal literal anywhere means the writer rounded: compare with a tolerance."""
    return has_tag(node, "dec")


def has_constant(node, name: str) -> bool:
    return any(n[0] == "const" and n[1] == name for n in walk(node))
