"""A recursive-descent / Pratt parser from tokens to the answer tree (tree.py).

This is the only road from model text to math objects: it can build numbers, symbols, a
fixed set of functions and structures, and nothing else. It never calls `eval`, `sympify`
or `parse_expr`. Recursion is bounded by MAX_PARSE_DEPTH and the lexer's nesting limit.

Conventions (the usual ones in MATH answers; where text is ambiguous we pick one and say so):
- implicit multiplication binds like `*`: `2x^2`, `3\\sqrt{5}`, `(a+5)(b+2)`; but two numbers
  side by side (`2 3`) are unparsable, except a mixed number `1\\frac{4}{5}` = 9/5;
- unary minus binds looser than `^`: `-x^2` = -(x^2);
- a bare function argument runs to the next `+`/`-` or function: `\\sin 2x` = sin(2x),
  `\\sin x \\cos x` = sin(x)cos(x); `\\sin^2 x` = (sin x)^2; `\\sin^{-1} x` = arcsin x;
- `\\log` without a base is the natural log (both sides are read the same way);
- `x > 2`, `-2 \\le x < 7` become intervals, `x \\ne 2` a union, and a list of ranges
  (`x < -2, x > 2`, written with "or") their union; `x \\in S` becomes S;
- a chain of `=` / `\\approx` is read by relations.equation_chain, `3:7` is a ratio, `;` separates
  answers (`a=3, b=1; a=5, b=1`: two tuples), and arithmetic on matrices is computed (matrices.py).
"""

from __future__ import annotations

from mathrl.verify import matrices
from mathrl.verify.lexer import tokenize
from mathrl.verify.limits import MAX_CHAIN, MAX_PARSE_DEPTH, TooLarge, Unparsable
from mathrl.verify.relations import equation_chain, interval, ratio
from mathrl.verify.tree import STRUCTURES

_INFIX = {"+": 10, "-": 10, "pm": 10, "mp": 10, "*": 20, "/": 20, "^": 30, "!": 40}
_IMPLICIT = 20
_UNARY = 25
_BINARY_TAG = {"+": "add", "-": "sub", "pm": "pm", "mp": "pm", "*": "mul", "/": "div"}
_RELATIONS = frozenset({"=", "approx", "<", ">", "<=", ">=", "!=", "in"})
_STARTS_PRIMARY = frozenset({"id", "const", "fn", "cmd", "begin"})
_STARTS_PRIMARY_OPS = frozenset({"(", "{", "lfloor", "lceil"})
_MATRICES = frozenset({"pmatrix", "bmatrix", "Bmatrix", "matrix", "smallmatrix", "array"})
_INVERSE = {"sin": "arcsin", "cos": "arccos", "tan": "arctan"}
_ATOMS = {"num": lambda v: ("num", int(v)), "dec": lambda v: ("dec", v),
          "id": lambda v: ("sym", v), "const": lambda v: ("const", v)}


def parse(text: str) -> tuple:
    """The answer tree of a normalised answer; raises Unparsable or TooLarge."""
    return _Parser(tokenize(text)).answer()


def _arith(tag: str, *operands) -> tuple:
    """An arithmetic node; tuples, sets and equations are not numbers, matrices are computed."""
    if any(op[0] == "matrix" for op in operands):
        return matrices.combine(tag, operands)
    if any(op[0] in STRUCTURES for op in operands):
        raise Unparsable(f"{tag} of a structure")
    return (tag, *operands)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]]):
        self.tokens = tokens
        self.i = 0
        self.depth = 0
        self.bare_arg = False  # inside `\sin x ...`: a following function starts a new factor
        self.was_range = False  # the last relation() was one variable's range (an interval)

    # ---- token access -------------------------------------------------------------------------

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def advance(self) -> tuple[str, str, int]:
        token = self.tokens[self.i]
        if token[0] != "eof":
            self.i += 1
        return token

    def accept(self, op: str) -> bool:
        kind, value, _ = self.peek()
        if kind == "op" and value == op:
            self.i += 1
            return True
        return False

    def expect(self, op: str) -> None:
        if not self.accept(op):
            kind, value, pos = self.peek()
            raise Unparsable(f"expected {op!r} at {pos}, got {value or kind!r}")

    # ---- answers: lists, relations, unions ----------------------------------------------------

    def answer(self) -> tuple:
        """Answers separated by `;` are a list of answers, each one written with `,` a tuple
        (`a=3, b=1; a=5, b=1` is the pairs (3, 1), (5, 1))."""
        parts = [self.listing()]
        while self.accept(";"):
            parts.append(self.listing())
        if self.peek()[0] != "eof":
            raise Unparsable(f"unexpected {self.peek()[1]!r} at {self.peek()[2]}")
        if len(parts) == 1:
            return parts[0]
        return ("seq", "", "", tuple(("seq", "(", ")", p[3]) if p[0] == "seq" and p[1] == "" else p
                                     for p in parts))

    def listing(self) -> tuple:
        items, ranges = [self.relation()], [self.was_range]
        while self.accept(","):
            items.append(self.relation())
            ranges.append(self.was_range)
        if len(items) == 1:
            return items[0]
        if all(ranges):  # `x < -2 or x > 2` (the "or" became a comma): a union of ranges
            return ("union", tuple(items))
        return ("seq", "", "", tuple(items))

    def relation(self) -> tuple:
        self.was_range = False
        operands, ops = [self.ratio()], []
        while self.peek()[0] == "op" and self.peek()[1] in _RELATIONS:
            if len(ops) >= MAX_CHAIN:
                raise TooLarge("relation chain too long")
            ops.append(self.advance()[1])
            operands.append(self.ratio())
        if not ops:
            return operands[0]
        if ops == ["in"]:
            if operands[0][0] != "sym":
                raise Unparsable("`in` needs a variable on the left")
            return operands[1]
        if ops == ["="] and operands[0][0] == "sym" and operands[1][0] == "matrix":
            return ("eq", operands[0], operands[1])  # `\mathbf{v} = \begin{pmatrix}...`
        if any(o[0] in STRUCTURES and o[0] != "seq" for o in operands) or "in" in ops:
            raise Unparsable("relation between structures")
        if set(ops) <= {"=", "approx"}:
            return equation_chain(ops, operands)
        if "=" in ops or "approx" in ops:
            raise Unparsable("chained equation")
        found = interval(tuple(ops), tuple(operands))
        self.was_range = found is not None
        return found or ("rel", tuple(ops), tuple(operands))

    def ratio(self) -> tuple:
        items = [self.union()]
        while self.accept(":"):
            if len(items) >= MAX_CHAIN:
                raise TooLarge("ratio too long")
            items.append(self.union())
        return items[0] if len(items) == 1 else ratio(items)

    def union(self) -> tuple:
        items = [self.expr(0)]
        while self.accept("cup"):
            items.append(self.expr(0))
        if len(items) == 1:
            return items[0]
        if all(item[0] == "seq" and item[1] == "{" for item in items):  # {1, 2} ∪ {3} = {1, 2, 3}
            return ("seq", "{", "}", tuple(x for item in items for x in item[3]))
        return ("union", tuple(items))

    # ---- Pratt loop ---------------------------------------------------------------------------

    def expr(self, rbp: int) -> tuple:
        self.depth += 1
        if self.depth > MAX_PARSE_DEPTH:
            raise TooLarge("expression nested too deeply")
        left = self.prefix()
        while True:
            kind, value, _ = self.peek()
            if kind == "op" and value in _INFIX:
                if _INFIX[value] <= rbp:
                    break
                left = self.infix(left, self.advance()[1])
            elif self.starts_factor() and _IMPLICIT > rbp:
                left = self.juxtapose(left)
            else:
                break
        self.depth -= 1
        return left

    def starts_factor(self) -> bool:
        kind, value, _ = self.peek()
        if kind == "fn" and self.bare_arg:
            return False
        return kind in _STARTS_PRIMARY or kind in ("num", "dec") or (
            kind == "op" and value in _STARTS_PRIMARY_OPS)

    def infix(self, left: tuple, op: str) -> tuple:
        if op == "!":
            return _arith("fact", left)
        if op == "^":
            return _arith("pow", left, self.exponent())
        return _arith(_BINARY_TAG[op], left, self.expr(_INFIX[op]))

    def juxtapose(self, left: tuple) -> tuple:
        kind, value, pos = self.peek()
        if kind in ("num", "dec"):
            raise Unparsable(f"number after a factor at {pos}")
        right = self.expr(_IMPLICIT)
        whole = left[1] if left[0] == "neg" else left
        if (kind, value) == ("cmd", "frac") and whole[0] == "num" and right[0] == "div" \
                and right[1][0] == "num" and right[2][0] == "num" and right[1][1] < right[2][1]:
            mixed = ("add", whole, right)  # 1\frac{4}{5} = 1 + 4/5
            return ("neg", mixed) if left[0] == "neg" else mixed
        return _arith("mul", left, right)

    def exponent(self) -> tuple:
        if self.accept("{"):
            return self.closed(lambda: self.expr(0), "}")
        return self.expr(_INFIX["^"] - 1)  # right-associative

    # ---- primaries ----------------------------------------------------------------------------

    def closed(self, inner, close: str) -> tuple:
        """Parse a bracketed part: inside brackets a function argument is no longer bare."""
        saved, self.bare_arg = self.bare_arg, False
        node = inner()
        self.bare_arg = saved
        self.expect(close)
        return node

    def prefix(self) -> tuple:
        kind, value, pos = self.advance()
        if kind in _ATOMS:
            return _ATOMS[kind](value)
        if kind == "fn":
            return self.function(value)
        if kind == "cmd":
            return _COMMAND_PARSERS[value](self)
        if kind == "begin":
            return self.matrix(value)
        if kind == "op" and value in _PREFIX_OPS:
            return _PREFIX_OPS[value](self)
        raise Unparsable(f"unexpected {value or kind!r} at {pos}")

    def argument(self) -> tuple:
        """A LaTeX argument: `{...}` or a single token (`\\frac\\pi2`)."""
        if self.accept("{"):
            return self.closed(lambda: self.expr(0), "}")
        kind, value, pos = self.advance()
        if kind in _ATOMS:
            return _ATOMS[kind](value)
        raise Unparsable(f"bad argument at {pos}")

    def bracket(self, open_: str) -> tuple:
        saved, self.bare_arg = self.bare_arg, False
        items = [self.expr(0)]
        while self.accept(","):
            items.append(self.expr(0))
        self.bare_arg = saved
        kind, close, pos = self.advance()
        if kind != "op" or close not in (")", "]"):
            raise Unparsable(f"unclosed {open_!r} at {pos}")
        if len(items) == 1:
            if (open_, close) not in (("(", ")"), ("[", "]")):
                raise Unparsable("half-open bracket around one item")
            return items[0]
        return ("seq", open_, close, tuple(items))

    def set_(self, close: str) -> tuple:
        items: list[tuple] = []
        if not self.accept(close):
            saved, self.bare_arg = self.bare_arg, False
            items.append(self.expr(0))
            while self.accept(","):
                items.append(self.expr(0))
            self.bare_arg = saved
            self.expect(close)
        return ("seq", "{", "}", tuple(items))

    def function(self, name: str) -> tuple:
        power = base = None
        while True:
            if power is None and self.accept("^"):
                power = self.closed(lambda: self.expr(0), "}") if self.accept("{") else self.prefix()
            elif base is None and name == "log" and self.accept("_"):
                base = self.argument()
            else:
                break
        if power == ("neg", ("num", 1)) and name in _INVERSE:
            name, power = _INVERSE[name], None
        if self.accept("("):
            arg = self.closed(lambda: self.expr(0), ")")
        else:
            saved, self.bare_arg = self.bare_arg, True
            arg = self.expr(_IMPLICIT - 1)
            self.bare_arg = saved
        name = "log" if name == "ln" else name
        node = _arith("fn", name, arg, base) if base is not None else _arith("fn", name, arg)
        return _arith("pow", node, power) if power is not None else node

    def sqrt(self) -> tuple:
        if self.accept("["):
            index = self.closed(lambda: self.expr(0), "]")
            return _arith("fn", "root", self.argument(), index)
        return _arith("fn", "sqrt", self.argument())

    def matrix(self, env: str) -> tuple:
        if env not in _MATRICES:
            raise Unparsable(f"environment {env}")
        rows, row = [], [self.expr(0)]
        while True:
            if self.accept("&"):
                row.append(self.expr(0))
            elif self.accept("row"):
                rows.append(tuple(row))
                row = [] if self.peek()[0] == "end" else [self.expr(0)]
            elif self.peek()[0] == "end":
                if self.advance()[1] != env:
                    raise Unparsable(f"\\end does not match \\begin{{{env}}}")
                if row:
                    rows.append(tuple(row))
                break
            else:
                raise Unparsable(f"unexpected {self.peek()[1]!r} in matrix")
        if len({len(r) for r in rows}) != 1:
            raise Unparsable("ragged matrix")
        return ("matrix", tuple(rows))


def _delimited(close: str, fn: str):
    def parse_(p: _Parser) -> tuple:
        return _arith("fn", fn, p.closed(lambda: p.expr(0), close))
    return parse_


_PREFIX_OPS = {
    "-": lambda p: _arith("neg", p.expr(_UNARY)),
    "+": lambda p: _arith("pos", p.expr(_UNARY))[1],  # +x is x; _arith rejects +(1,2)
    "pm": lambda p: _arith("pm", ("num", 0), p.expr(_UNARY)),
    "mp": lambda p: _arith("pm", ("num", 0), p.expr(_UNARY)),
    "(": lambda p: p.bracket("("),
    "[": lambda p: p.bracket("["),
    "{": lambda p: p.closed(lambda: p.expr(0), "}"),
    "\\{": lambda p: p.set_("\\}"),
    "empty": lambda p: ("seq", "{", "}", ()),
    "|": _delimited("|", "abs"),
    "lfloor": _delimited("rfloor", "floor"),
    "lceil": _delimited("rceil", "ceil"),
}

_COMMAND_PARSERS = {
    "frac": lambda p: _arith("div", p.argument(), p.argument()),
    "sqrt": _Parser.sqrt,
    "binom": lambda p: _arith("fn", "binom", p.argument(), p.argument()),
}
