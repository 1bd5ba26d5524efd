"""Answers in free text: delimited math spans, bare numbers, and the prose around them.

A completion without `\\boxed{}` or `####` is either one math expression (taken whole:
`\\frac{y}{5}+\\frac{3}{5}` is the answer, not its last number 5) or prose with math in it
(the last math item is the answer: a `$...$`, `$$...$$`, `\\(...\\)` or `\\[...\\]` span, or a
bare number outside spans, so "the smallest $k$ is 7" answers 7). Spans that end the text
joined only by commas, "and" or "or" are one answer: "the roots are $x=2$ and $x=3$" -> `x=2, x=3`.

A `$` that opens a "span" of prose is a currency sign, not a delimiter ("earns $18 and spends
$5 a day"): GSM8K text is full of them. Every scan here is linear in the text (an unclosed
opener is remembered, not searched for again), since completions are untrusted input.
"""

from __future__ import annotations

import re

from mathrl.verify.limits import TooLarge, Unparsable
from mathrl.verify.normalize import normalize
from mathrl.verify.parser import parse

MAX_WHOLE_CHARS = 1000  # a longer completion is a derivation, never one bare expression
TAIL_CHARS = 8192  # the final answer is in the last lines: scan no more (hostile text is long)

_OPEN = re.compile(r"(?<!\\)\$\$|(?<!\\)\$|\\\(|\\\[")
_CLOSE = {"$$": re.compile(r"(?<!\\)\$\$"), "$": re.compile(r"(?<!\\)\$"),
          "\\(": re.compile(r"\\\)"), "\\[": re.compile(r"\\\]")}
# The last_number pattern, plus thousands in European (`2.500,75`) and thin-space (`2 500`) style
# and a decimal comma before a currency sign (`12,50 €`). A digit run glued to a letter before
# it is part of a word (`QX7ZT`, `H2O2`, `E404`), not a number.
NUMBER = re.compile(
    r"(?:(?<![\w.\-])-)?(?<![A-Za-z\d])"
    r"(?:\d{1,3}(?:\.\d{3})+,\d+|\d{1,3}(?:[\u00a0\u202f\u2009]\d{3})+(?:\.\d+)?"
    r"|\d+,\d{1,2}(?=\s?[\u20ac\u00a3\u20bd\u20b9\u00a5])"
    r"|(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?)|(?:(?<![\w.\-])-)?\.\d+")

# Letter runs that are math, not words ("sqrt(2)", "2 pi", "log x", "max").
MATH_WORDS = frozenset(
    "sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh log ln exp sqrt abs pi inf infty "
    "infinity oo mod gcd lcm max min det deg dfrac frac cdot".split())
# Two-letter English words: "x is 5" is prose, `xy` is a product.
_SHORT_WORDS = frozenset("is it so we to of in on at be as by or an if no am are and the".split())
_TEXT_GROUP = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mbox|operatorname|begin|end)\s*\{[^{}]*\}")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_LETTERS = re.compile(r"[A-Za-z]+")
_ARITHMETIC = re.compile(r"[\d\s+\-*/^=.:\u2248\u00d7\u00f7\u00b7]+")
_RELATION = re.compile(r"=|\u2248|\\approx(?![A-Za-z])")
_JOINERS = frozenset({"", ",", ";", "and", "or", ", and", ", or", "\\text{and}", "\\text{or}",
                      "\\text{ and }", "\\text{ or }", "\\quad", "\\qquad"})


def is_prose(text: str) -> bool:
    """Does `text` contain words (outside `\\text{}`, commands and math names)?"""
    if not re.search(r"[A-Za-z]{2}", text):
        return False
    text = _COMMAND.sub(" ", _TEXT_GROUP.sub(" ", text))
    for word in _LETTERS.findall(text):
        w = word.lower()
        if (len(w) >= 3 and w not in MATH_WORDS) or w in _SHORT_WORDS:
            return True
    return False


def _currency(inner: str) -> bool:
    """`$18 and spends $`: a `$` before a number whose "span" runs into words."""
    return inner[:1].isdigit() and is_prose(inner)


def spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, inner text) of every delimited math span, in text order."""
    out, pos, unclosed = [], 0, set()
    while (m := _OPEN.search(text, pos)) is not None:
        opener = m.group(0)
        close = None if opener in unclosed else _CLOSE[opener].search(text, m.end())
        if close is None:
            unclosed.add(opener)  # no closer after here, so none after any later opener
            pos = m.end()
            continue
        inner = text[m.end():close.start()]
        if not inner.strip() or (opener == "$" and _currency(inner)):
            pos = m.end()  # empty, or a currency sign: the `$` that closed it may open the next span
            continue
        out.append((m.start(), close.end(), inner.strip()))
        pos = close.end()
    return out


def _numbers_between(text: str, start: int, end: int) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in NUMBER.finditer(text, start, end)]


def math_items(text: str) -> list[tuple[int, int, str, bool]]:
    """Spans and bare numbers outside spans, in text order: (start, end, answer, is_span)."""
    items, pos = [], 0
    for start, end, inner in spans(text):
        items += [(s, e, a, False) for s, e, a in _numbers_between(text, pos, start)]
        items.append((start, end, inner, True))
        pos = end
    items += [(s, e, a, False) for s, e, a in _numbers_between(text, pos, len(text))]
    return items


def last_math(text: str) -> str | None:
    """The last math item; final spans joined by "," / "and" / "or" form one list answer."""
    items = math_items(text)
    if not items:
        return None
    start, _, answer, is_span = items[-1]
    if not is_span:
        return answer
    joined = [answer]
    for prev in reversed(items[:-1]):
        between = " ".join(text[prev[1]:start].split()).lower()
        if not prev[3] or between not in _JOINERS or not prev[2]:
            break
        joined.append(prev[2])
        start = prev[0]
    return ", ".join(reversed(joined))


def whole_math(text: str) -> str | None:
    """The text itself when it is one math expression (no words), else None."""
    s = text.strip()
    if not s or len(s) > MAX_WHOLE_CHARS or is_prose(s):
        return None
    lines = [line.strip() for line in s.splitlines() if line.strip()]
    answer = lines[-1].rstrip(".").rstrip()  # several math lines: the last one concludes
    if _ARITHMETIC.fullmatch(re.sub(r"\$|\\[()\[\]]", "", answer)):
        return None  # `3 + 4 = 7`, `8 + 12`: plain arithmetic answers with its last number (GSM8K)
    parts = _RELATION.split(answer)
    if len(parts) > 1 and not re.search(r"[A-Za-z]", "".join(parts[:-1])):
        # a calculation `1 + 1 = 2` states its result; `69 = 4 + 10` has none to take whole
        result = parts[-1].strip().rstrip(".,;")
        return result if NUMBER.fullmatch(result) else None
    try:
        parse(normalize(answer))
    except (Unparsable, TooLarge, RecursionError):
        return None
    return answer or None


def tail(text: str) -> str:
    """The last TAIL_CHARS of the text, from a line start (a span rarely crosses a line break,
    so the cut does not pair one span's closing `$` with the next one's opening `$`)."""
    if len(text) <= TAIL_CHARS:
        return text
    cut = text.find("\n", len(text) - TAIL_CHARS)
    return text[cut + 1:] if cut >= 0 else text[-TAIL_CHARS:]


def _last_line(text: str) -> str:
    end = len(text.rstrip())
    return text[text.rfind("\n", 0, end) + 1:end]


def free_text(completion: str) -> str | None:
    """The answer of a completion with no explicit marker: itself if it is math, else its last
    line if that is math (a solution that ends in `\\frac{5}{15}`), else its last math item."""
    return whole_math(completion) or whole_math(_last_line(completion)) or last_math(tail(completion))
