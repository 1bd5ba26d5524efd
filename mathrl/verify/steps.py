"""Process supervision: check the arithmetic of each calculation a solution states.

Used by the `grpo_ps` algorithm to give a reward per step rather than per sequence. A step
is a calculation `a op b ... = c` with + - * / x × ÷ (brackets, `$`, `1,000`, `.5`, `%`
allowed), or a GSM8K calculator annotation `<<48/2=24>>`. A chain `a = b = c` is read the
mathematical way (every side equal), so `5+2(3)=5+6=11` is two right steps. Arithmetic is
exact (fractions.Fraction, through the same safe parser as answers); a result written with
d decimals is right when the exact value rounds to it (`<<10/3=3.33>>` is right, `10/3 = 3`
is not); `%` means /100 on both sides (`12/20 x 100% = 60%` is right).

On a line with calculator annotations only the annotations count: in GSM8K they restate the
text's calculation (`9 * 2 = $<<9*2=18>>18`), and counting both would double the step.
"""

from __future__ import annotations

import re
from fractions import Fraction

from mathrl.verify import exact
from mathrl.verify.limits import TooLarge, Unparsable, check_bounds
from mathrl.verify.parser import parse

MAX_STEP_CHARS = 500  # a longer "calculation" is not a step a person wrote
_ANNOTATION = re.compile(r"<<([^<>=\n]{1,200})=([^<>=\n]{1,60})>>")
# One linear pass of tokens per line (a backtracking regex over `1 + 2 + ...` is quadratic).
_TOKEN = re.compile(
    r"(?P<num>\$?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?|\.\d+)(?:\.\d+)?%?)"
    r"|(?P<op>[-+*/\u00d7\u00f7\u2013\u2212]|x(?=\s*[\d($.]))"
    r"|(?P<paren>[()])|(?P<eq>=)|(?P<space>\s+)"
    r"|(?P<other>[^\d\s()+\-*/\u00d7\u00f7\u2013\u2212=$x.]+|.)")
_OPERATORS = {"×": "*", "÷": "/", "–": "-", "−": "-"}


def _arithmetic(expression: str) -> Fraction | None:
    """Exact value of `48 x 2 - $1,000 + 50%`, or None when it is not plain arithmetic."""
    if len(expression) > MAX_STEP_CHARS:
        return None
    text = expression.replace("$", "").replace(",", "")
    for symbol, op in _OPERATORS.items():
        text = text.replace(symbol, op)
    text = re.sub(r"(?<=[\d)\s])x(?=[\s\d(.])", "*", text)
    text = re.sub(r"(\d*\.?\d+)%", r"(\1/100)", text)
    try:
        tree = parse(text)
        check_bounds(tree)
        return exact.value(tree)
    except (Unparsable, TooLarge, exact.NotRational, RecursionError):
        return None


def _rounding(result: str) -> Fraction:
    """Half a unit in the last written decimal place of a single number, else 0 (exact)."""
    cleaned = result.strip().replace("$", "").replace(",", "")
    m = re.fullmatch(r"-?\d*\.(\d+)(%?)", cleaned)
    if m is None:
        return Fraction(0)
    half_unit = Fraction(1, 2 * 10 ** len(m.group(1)))
    return half_unit / 100 if m.group(2) else half_unit


def _check(lhs: str, rhs: str) -> bool | None:
    """Is lhs = rhs right? None when either side is not arithmetic."""
    value, stated = _arithmetic(lhs), _arithmetic(rhs)
    if value is None or stated is None:
        return None
    return abs(value - stated) <= _rounding(rhs)


def _is_calculation(segment: list[re.Match]) -> bool:
    """At least two numbers and an operator, starting with a number, `(` or a sign: the text
    before `60g * 4/5` starts with `*` and is not a calculation."""
    kinds = [t.lastgroup for t in segment if t.lastgroup != "space"]
    if kinds.count("num") < 2 or "op" not in kinds:
        return False
    first = next(t for t in segment if t.lastgroup != "space")
    return first.lastgroup in ("num", "paren") or first.group(0) in "-–−"


def _chain_steps(segments: list[list[re.Match]]) -> list[tuple[int, bool]]:
    """`s0 = s1 = s2 ...`: one step per `=` whose left side is a calculation."""
    found = []
    for lhs, rhs in zip(segments, segments[1:]):
        if not _is_calculation(lhs) or not any(t.lastgroup == "num" for t in rhs):
            continue
        ok = _check("".join(t.group(0) for t in lhs), "".join(t.group(0) for t in rhs))
        if ok is not None:
            end = max(t.end() for t in rhs if t.lastgroup != "space")
            found.append((end, ok))
    return found


def _line_steps(line: str) -> list[tuple[int, bool]]:
    annotations = list(_ANNOTATION.finditer(line))
    if annotations:
        return [(m.end(), ok) for m in annotations
                if (ok := _check(m.group(1), m.group(2))) is not None]
    found: list[tuple[int, bool]] = []
    segments: list[list[re.Match]] = [[]]  # the current chain, split at `=`
    for tok in _TOKEN.finditer(line):
        if tok.lastgroup == "eq":
            segments.append([])
            continue
        last = next((t for t in reversed(segments[-1]) if t.lastgroup != "space"), None)
        # A word ends the chain; so does a number right after a number (`1+1=2 2+2=4`).
        if tok.lastgroup == "other" or (tok.lastgroup == "num" and last is not None
                                        and (last.lastgroup == "num" or last.group(0) == ")")):
            found += _chain_steps(segments)
            segments = [[]]
        if tok.lastgroup != "other":
            segments[-1].append(tok)
    return found + _chain_steps(segments)


def check_steps(text: str) -> list[tuple[int, bool]]:
    """(offset just past each calculation, is its arithmetic right), in text order."""
    steps, start = [], 0
    for line in text.split("\n"):
        steps += [(start + end, ok) for end, ok in _line_steps(line)]
        start += len(line) + 1
    return steps
