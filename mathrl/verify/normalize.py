"""Normalisation: rewrite an extracted answer into a canonical string before comparison.

One small rule per surface variation, applied in order (RULES). Rules only remove notation
that never changes the value (delimiters, spacing, units, `\\left`); everything with meaning
is left to the parser. The rules follow the MATH normaliser of Hendrycks et al.
(`fix_fracs`, `fix_sqrt`, `remove_right_units`) and lm-eval's GSM8K filters, extended with
the cases they miss (`10{,}000`, `11,\\! 111`, `\\mbox{ cm}^2`, `52_8`).
"""

from __future__ import annotations

import re

from mathrl.verify.latex import closing_brace, unwrap_commands

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": r"\times ", "\u00f7": r"\div ", "\u00b7": r"\cdot ",
    "\u22c5": r"\cdot ", "\u221a": r"\sqrt", "\u03c0": r"\pi ", "\u221e": r"\infty ",
    "\u00b1": r"\pm ", "\u2264": r"\le ", "\u2265": r"\ge ", "\u2260": r"\ne ", "\u222a": r"\cup ",
    "\u00b0": "", "\u2009": " ", "\u00a0": " ", "\u202f": " ", "\u2032": "'",
    "\u00b2": "^2", "\u00b3": "^3", "\u20ac": "", "\u00a3": "", "\u00a5": "", "\u20b9": "",
    "\u2208": r"\in ", "\u2229": r"\cap ", "\u2205": r"\emptyset ", "\u27e8": r"\langle ",
    "\u27e9": r"\rangle ", "\u2062": "", "\u2248": r"\approx ",
    **{chr(0x3b1 + i): f"\\{name} " for i, name in enumerate(
        "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
        "varsigma sigma tau upsilon phi chi psi omega".split()) if name not in ("omicron", "varsigma")},
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))

_DELIMITERS = [("$$", "$$"), ("$", "$"), (r"\(", r"\)"), (r"\[", r"\]"), ("**", "**")]
_WRAPPERS = ("boxed", "fbox")
_TEXT_COMMANDS = ("text", "textbf", "textit", "textrm", "mathrm", "mathbf", "mathit", "mbox",
                  "operatorname", "mathsf", "hbox", "vec", "overrightarrow", "boldsymbol", "bm",
                  "textnormal", "emph", "overline", "bar", "hat", "widehat", "mathcal", "mathscr",
                  "mathfrak", "texttt", "textsf", "mathtt", "textup")
# Words that are math when they trail a number ("2 pi"), never units.
_MATH_WORDS = frozenset({"pi", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp",
                         "sqrt", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "inf",
                         "infty", "infinity", "oo"})
# Units that may be written glued to the number ("10cm"); other glued letters are variables.
_GLUED_UNITS = frozenset({"cm", "mm", "km", "kg", "mg", "ml", "ft", "lbs", "lb", "oz", "mph",
                          "hrs", "hr", "sec", "mins", "min", "cents", "kmh", "sq", "yd", "yds"})


def _unicode(s: str) -> str:
    return _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s) if not s.isascii() else s


def _outer(s: str) -> str:
    """Strip math delimiters and a `\\boxed{}` around the whole answer, repeatedly."""
    for _ in range(8):
        s = s.strip()
        before = s
        for left, right in _DELIMITERS:
            if len(s) > len(left) + len(right) and s.startswith(left) and s.endswith(right):
                s = s[len(left) : -len(right)]
                break
        for name in _WRAPPERS:
            head = "\\" + name
            if s.startswith(head):
                rest = s[len(head) :].lstrip()
                if rest.startswith("{") and closing_brace(rest, 0) == len(rest) - 1:
                    s = rest[1:-1]
        if s == before:
            break
    return s


def _sizing(s: str) -> str:
    # `\left.` / `\right.` are invisible delimiters; the others keep their bracket.
    s = re.sub(r"\\(?:left|right)\s*\.", "", s)
    return re.sub(r"\\(?:left|right|[bB]igg?[lr]?)(?![a-zA-Z])", "", s)


_INDIAN = re.compile(r"\s*(-?[1-9]\d?(?:,(?:\\!)?\d{2})+,(?:\\!)?\d{3}(?:\.\d+)?)\s*")


def _thousands(s: str) -> str:
    """`10{,}000`, `11,\\! 111`, `1,000,000`, `2.500,75`, `12,34,567` -> digits (and a decimal point).

    A bare comma is a separator only outside brackets: in `(2,12) \\cup (12,102)` it splits items.
    `{,}` before exactly three digits groups thousands, otherwise it is a decimal comma (`3{,}5`).
    Dots as thousands separators only where a decimal point cannot be meant: `1.234.567`, `2.500,75`.
    """
    indian = _INDIAN.fullmatch(s)
    if indian:  # `12,34,567`: lakh grouping, pairs of digits before the last three
        return re.sub(r",(?:\\!)?", "", indian.group(1))
    s = re.sub(r"\{,\}(?=\d{3}(?!\d))", "", s).replace("{,}", ".")
    s = re.sub(r"(\d),?\\!\s*(?=\d{3}(?!\d))", r"\1", s)
    eu = re.fullmatch(r"\s*(-?[1-9]\d{0,2}(?:\.\d{3})+)(,\d+)?\s*", s)
    if eu and (eu.group(2) or eu.group(1).count(".") > 1):
        return eu.group(1).replace(".", "") + (eu.group(2) or "").replace(",", ".")
    si = re.fullmatch(r"\s*(-?[1-9]\d{0,2}(?:(?: |\\,|\\ |~|\\;|\\:)\d{3})+(?:\.\d+)?)\s*", s)
    if si:  # `1 000 000`, `2\,000` (SI style), only as the whole answer
        return re.sub(r"\\[,;: ]|~| ", "", si.group(1))
    if re.search(r"[()\[\]{}]", s):
        return s
    return re.sub(r"(?<![\d.,])[1-9]\d{0,2}(?:,\d{3})+(?![\d,])",
                  lambda m: m.group(0).replace(",", ""), s)


def _spacing(s: str) -> str:
    s = re.sub(r"\\(?:displaystyle|textstyle|scriptstyle|quad|qquad)(?![a-zA-Z])", " ", s)
    s = re.sub(r"(?<!\\)\\[!,;: ]", " ", s)  # not the second half of a `\\` row break
    return s.replace("~", " ")


def _aliases(s: str) -> str:
    s = re.sub(r"\\[dtc]frac(?![a-zA-Z])", r"\\frac", s)
    s = re.sub(r"\\[dt]binom(?![a-zA-Z])", r"\\binom", s)
    return re.sub(r"\\(?:lt)(?![a-zA-Z])", "<", re.sub(r"\\gt(?![a-zA-Z])", ">", s))


def _degrees(s: str) -> str:
    s = re.sub(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])", "", s)
    return re.sub(r"\\(?:circ|degree)(?![a-zA-Z])", "", s)


def _text(s: str) -> str:
    return unwrap_commands(s, _TEXT_COMMANDS) if "\\" in s else s


_SET_BUILDER = re.compile(
    r"\\\{\s*([A-Za-z])\s*(?:\\in\s*\\mathbb\s*\{?[RZ]\}?\s*)?(?:\\mid|\||:)\s*(.+?)\s*\\\}")


def _set_builder(s: str) -> str:
    """`\\{x \\mid x > 1\\}`, `\\{x | -1 < x < 2\\}`: the set is its condition (parsed as an
    interval); `\\mathbb{R}` is the interval (-inf, inf)."""
    s = _SET_BUILDER.sub(lambda m: m.group(2), s) if "\\{" in s else s
    s = re.sub(r"\\mathbb\s*\{?R\}?", r"(-\\infty, \\infty)", s) if "mathbb" in s else s
    return "(-\\infty, \\infty)" if s.lower() in ("all real numbers", "all reals", "real numbers") else s


def _repeating(s: str) -> str:
    """`0.\\overline{3}` = 1/3, `0.1\\overline{6}` = 1/6: a repeating decimal is an exact fraction."""
    def fraction(m: re.Match) -> str:
        whole, fixed, period = m.group(1) or "0", m.group(2), m.group(3)
        den = 10 ** len(fixed) * (10 ** len(period) - 1)
        num = int(whole + fixed + period) - int(whole + fixed)
        return f"\\frac{{{num}}}{{{den}}}"
    if "overline" not in s or len(s) > 200:
        return s
    return re.sub(r"(\d*)\.(\d*)\\overline\s*\{(\d{1,20})\}", fraction, s)


def _conjunctions(s: str) -> str:
    """`x=2 \\text{ or } x=3`, `5 and 7`: a list of answers. Only around math (a digit or `=`),
    so that a text answer keeps its words."""
    if not re.search(r"[\d=]", s):
        return s
    return re.sub(r"\s*(?:,\s*)?\b(?:or|and)\b\s*", ", ", s)


_CURRENCY = re.compile(r"\\(?:euro|pounds|yen|textdollar|textsterling|texteuro)(?![a-zA-Z])\s*"
                       r"|\b(?:USD|EUR|GBP|Rs\.?|INR)(?![a-zA-Z])\s*")


def _money_percent(s: str) -> str:
    s = _CURRENCY.sub("", s.replace("\\$", "").replace("$", "").replace("\\%", "%"))
    return re.sub(r"\s*\b(?:percent|per cent)\b\.?$", "%", s, flags=re.IGNORECASE)


def _short_args(s: str) -> str:
    """Hendrycks' fix_fracs / fix_sqrt: `\\frac12`, `\\frac 59`, `\\frac{270}7`, `\\sqrt2`."""
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*(\d)\s*(?=\{|\\)", r"\\frac{\1}", s)
    s = re.sub(r"\\frac\s*(\{[^{}]*\})\s*(\d)", r"\\frac\1{\2}", s)
    s = re.sub(r"\\binom\s*(\d)\s*(\d)", r"\\binom{\1}{\2}", s)
    return re.sub(r"\\sqrt\s*(\d)", r"\\sqrt{\1}", s)


def _base_subscript(s: str) -> str:
    """`52_8`, `4210_{5}`: the base is context from the question, the digits are the answer."""
    return re.sub(r"(\d)\s*_\s*(?:\{\s*\d+\s*\}|\d+)", r"\1", s)


_TRAILING_WORD = re.compile(r"(?<![A-Za-z\\])([A-Za-z]{2,})\.?\s*(?:\^\s*\{?\d\}?)?\s*$")


def _units(s: str) -> str:
    """Drop trailing unit / word phrases after a number: `5.4 cents`, `864 inches^2`, `10cm`."""
    rest = s
    for _ in range(6):
        m = _TRAILING_WORD.search(rest)
        if m is None or m.group(1).lower() in _MATH_WORDS:
            break
        glued = m.start() > 0 and not rest[m.start() - 1].isspace()
        if glued and m.group(1).lower() not in _GLUED_UNITS:
            break
        rest = rest[: m.start()].rstrip()
    if rest != s and rest and (rest[-1].isdigit() or rest[-1] in "})%"):
        return rest
    return s


def _punctuation(s: str) -> str:
    s = s.strip()
    while s and (s[-1] in ".,;:" or s.endswith("\\\\")):
        s = s[:-2] if s.endswith("\\\\") else s[:-1]
        s = s.rstrip()
    return s


def _whitespace(s: str) -> str:
    s = " ".join(s.split())
    return s[1:].lstrip() if s.startswith("+") else s


RULES = [_unicode, _outer, _sizing, _thousands, _spacing, _repeating, _aliases, _degrees, _text,
         _set_builder, _conjunctions, _money_percent, _short_args, _base_subscript, _units, _punctuation, _outer,
         _whitespace]

_PLAIN_NUMBER = re.compile(r"\s*-?\d+(?:\.\d+)?\s*")


def normalize(answer: str) -> str:
    """Canonical form of an extracted answer (the caller bounds its length first)."""
    if _PLAIN_NUMBER.fullmatch(answer):  # the GSM8K hot path: nothing to rewrite
        return answer.strip()
    for rule in RULES:
        answer = rule(answer)
    return answer


_GAP = re.compile(r"\s+")


def compact(answer: str) -> str:
    """The form for string equality: `x^2 + 1` == `x^2+1`, but a space between two letters or
    digits stays (`2 1/2` is a mixed number, `21/2` is not)."""
    return _GAP.sub(lambda m: " " if 0 < m.start() and m.end() < len(answer)
                    and answer[m.start() - 1].isalnum() and answer[m.end()].isalnum() else "", answer)
