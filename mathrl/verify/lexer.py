"""Tokenizer for the math subset of plain text and LaTeX: the whitelist of the safe parser.

Anything outside the whitelist (a quote, a dot that is not a decimal point, an unknown
`\\command`, an underscore in a name) stops here with Unparsable, so no Python-looking text
(`__import__('os')`) ever reaches a later stage. Nesting depth and literal sizes are checked
while scanning, before the parser recurses.

Tokens are (kind, value, position):
    num   "123"            dec  "1.5", "2e10"       id   "x", "x_1", "theta", "f'"
    const "pi" "e" "i" "inf"                        fn   "sin", "log", "sqrt", "abs", ...
    cmd   "frac" "sqrt" "binom"                     begin / end  environment name
    op    "+" "-" "*" "/" "^" "_" "!" "(" ")" "[" "]" "{" "}" "\\{" "\\}" "|" "," "=" "<" ">"
          "<=" ">=" "!=" "pm" "mp" "cup" "in" "&" "row" "lfloor" "rfloor" "lceil" "rceil" "empty"
          ";" (between answers) ":" (a ratio) "approx"
    eof
"""

from __future__ import annotations

import re

from mathrl.verify.limits import MAX_DIGITS, MAX_NESTING, MAX_SCI_EXPONENT, TooLarge, Unparsable

FUNCTIONS = ("arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "sin", "cos", "tan", "cot",
             "sec", "csc", "log", "ln", "exp")
_GREEK = ("alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda "
          "mu nu xi rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi "
          "Sigma Phi Psi Omega").split()

COMMANDS: dict[str, tuple[str, str]] = {
    **{f: ("fn", f) for f in FUNCTIONS},
    **{g: ("id", g) for g in _GREEK},
    "pi": ("const", "pi"), "infty": ("const", "inf"),
    "frac": ("cmd", "frac"), "sqrt": ("cmd", "sqrt"), "binom": ("cmd", "binom"),
    "cdot": ("op", "*"), "times": ("op", "*"), "ast": ("op", "*"), "div": ("op", "/"),
    "pm": ("op", "pm"), "mp": ("op", "mp"), "approx": ("op", "approx"),
    "le": ("op", "<="), "leq": ("op", "<="), "leqslant": ("op", "<="),
    "ge": ("op", ">="), "geq": ("op", ">="), "geqslant": ("op", ">="),
    "ne": ("op", "!="), "neq": ("op", "!="), "cup": ("op", "cup"), "in": ("op", "in"),
    "lfloor": ("op", "lfloor"), "rfloor": ("op", "rfloor"),
    "lceil": ("op", "lceil"), "rceil": ("op", "rceil"),
    "emptyset": ("op", "empty"), "varnothing": ("op", "empty"),
    "langle": ("op", "("), "rangle": ("op", ")"),
    "lvert": ("op", "|"), "rvert": ("op", "|"), "vert": ("op", "|"), "mid": ("op", "|"),
    "{": ("op", "\\{"), "}": ("op", "\\}"), "lbrace": ("op", "\\{"), "rbrace": ("op", "\\}"), "\\": ("op", "row"),
    "%": ("op", "%"),
    "|": ("op", "|"),
}
_SKIPPED_COMMANDS = frozenset({",", "!", ";", ":", " ", "displaystyle", "left", "right", "angle"})

# Names recognised inside a run of plain letters ("sqrt(2)", "2pi"); longest first.
PLAIN_NAMES: dict[str, tuple[str, str]] = {
    **{f: ("fn", f) for f in FUNCTIONS}, "sqrt": ("fn", "sqrt"), "abs": ("fn", "abs"),
    "infinity": ("const", "inf"), "infty": ("const", "inf"), "inf": ("const", "inf"),
    "pi": ("const", "pi"),
}
_PLAIN_ORDER = sorted(PLAIN_NAMES, key=len, reverse=True)
_LETTER_CONSTANTS = {"e": ("const", "e"), "i": ("const", "i")}

_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<dec>(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+(?![A-Za-z]))?|\d+[eE][-+]?\d+(?![A-Za-z]))"
    r"|(?P<num>\d+)"
    r"|\\(?P<cmd>[A-Za-z]+|[^A-Za-z])"
    r"|(?P<word>[A-Za-z]+)(?P<sub>_(?:\{[A-Za-z0-9]{1,8}\}|[A-Za-z0-9]))?(?P<prime>'{1,3})?"
    r"|(?P<op2><=|>=|!=|\*\*)"
    r"|(?P<op>[-+*/^_()\[\]{},;:=<>!|&%])"
)
_ENVIRONMENT = re.compile(r"\s*\{([A-Za-z]+\*?)\}(?:(?<=\{array\})\s*\{[lcr|\s]{1,40}\})?")
_OPEN = frozenset({"(", "[", "{", "\\{", "lfloor", "lceil"})
_CLOSE = frozenset({")", "]", "}", "\\}", "rfloor", "rceil"})


def _number(kind: str, text: str) -> tuple[str, str]:
    mantissa, _, exponent = text.lower().partition("e")
    if len(mantissa) > MAX_DIGITS and sum(ch.isdigit() for ch in mantissa) > MAX_DIGITS:
        raise TooLarge("number literal too long")
    if exponent and abs(int(exponent)) > MAX_SCI_EXPONENT:
        raise TooLarge("exponent too large")
    return kind, text


def _split_word(word: str, sub: str | None, prime: str | None) -> list[tuple[str, str]]:
    """`xy` -> x, y (implicit product); `sqrt` -> fn; `2pi` -> const. A subscript or a prime
    (`f'`, `y''`: a derivative's name) joins the last letter."""
    out, i = [], 0
    while i < len(word):
        name = next((n for n in _PLAIN_ORDER if word.startswith(n, i)), None)
        if name is not None:
            out.append(PLAIN_NAMES[name])
            i += len(name)
        else:
            out.append(_LETTER_CONSTANTS.get(word[i], ("id", word[i])))
            i += 1
    if sub:
        kind, name = out[-1]
        if kind not in ("id", "const"):
            raise Unparsable(f"subscript on {name}")
        out[-1] = ("id", name + "_" + sub[1:].strip("{}"))
    if prime:
        kind, name = out[-1]
        if kind not in ("id", "const"):
            raise Unparsable(f"prime on {name}")
        out[-1] = ("id", name + prime)
    return out


def _command(text: str, m: re.Match) -> tuple[list[tuple[str, str]], int]:
    name, end = m.group("cmd"), m.end()
    if name in ("begin", "end"):
        env = _ENVIRONMENT.match(text, end)
        if env is None:
            raise Unparsable(f"\\{name} without environment")
        return [(name, env.group(1))], env.end()  # `\begin{array}{cc}`: the column spec is layout
    if name in _SKIPPED_COMMANDS:
        return [], end
    if name not in COMMANDS:
        raise Unparsable(f"unknown command \\{name}")
    return [COMMANDS[name]], end


def tokenize(text: str) -> list[tuple[str, str, int]]:
    """Tokens of `text`, ending with ("eof", "", len(text)); raises Unparsable / TooLarge."""
    tokens: list[tuple[str, str, int]] = []
    pos, depth = 0, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise Unparsable(f"unexpected {text[pos]!r} at {pos}")
        kind = "word" if m.lastgroup in ("sub", "prime") else m.lastgroup
        if kind == "space":
            new, end = [], m.end()
        elif kind in ("dec", "num"):
            new, end = [_number(kind, m.group(0))], m.end()
        elif kind == "cmd":
            new, end = _command(text, m)
        elif kind == "word":
            new, end = _split_word(m.group("word"), m.group("sub"), m.group("prime")), m.end()
        else:
            value = "^" if m.group(0) == "**" else m.group(0)
            new, end = [("op", value)], m.end()
        for k, v in new:
            if k == "op" and v in _OPEN:
                depth += 1
                if depth > MAX_NESTING:
                    raise TooLarge("nesting too deep")
            elif k == "op" and v in _CLOSE:
                depth -= 1
            tokens.append((k, v, pos))
        pos = end
    tokens.append(("eof", "", len(text)))
    return tokens
