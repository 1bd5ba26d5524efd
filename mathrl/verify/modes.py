"""Grading modes: how strictly an extracted answer is compared with the gold one.

    numeric  numbers only (GSM8K): normalise, then exact Fraction / Decimal comparison.
             Never parses expressions, never touches SymPy.
    math     everything: strings, numbers, expressions, structures, SymPy (MATH, AIME ...).
    exact    normalised string equality (for answers that are names or labels).

Each mode maps (pred, gold, Options) to a reason; the reason "equal" means correct.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache

from mathrl.verify.compare import Budget, answer_equal
from mathrl.verify.extract import unwrap
from mathrl.verify.lexer import PLAIN_NAMES
from mathrl.verify.limits import MAX_ANSWER_CHARS, TooLarge, Unparsable, check_bounds
from mathrl.verify.normalize import compact, normalize
from mathrl.verify.numbers import decimal_comma, numbers_equal, parse_number, split_percent
from mathrl.verify.parser import parse
from mathrl.verify.worker import WorkerCrashed, WorkerTimeout

REASONS = ("equal", "not_equal", "no_answer", "unparsable", "timeout", "too_large")


@dataclass(frozen=True)
class Options:
    rel_tol: float = 1e-6  # relative tolerance when a side is a rounded decimal
    timeout: float = 2.0  # seconds of symbolic (SymPy) work allowed per comparison
    percent_as_fraction: bool = False  # accept 50% == 0.5 (50% == 50 always holds)


def _verdict(same: bool) -> str:
    return "equal" if same else "not_equal"


def _prepare(pred: str, gold: str) -> tuple[str, str] | str:
    """Normalised (pred, gold), or a final reason when the strings alone decide."""
    if pred.strip() == gold.strip():
        return "equal"
    if len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        return "too_large"
    p, g = normalize(pred), normalize(gold)
    return "equal" if compact(p) == compact(g) else (p, g)


def compare_exact(pred: str, gold: str, options: Options) -> str:
    prepared = _prepare(pred, gold)
    return prepared if isinstance(prepared, str) else "not_equal"


def _numbers(p: str, g: str, options: Options) -> str | None:
    """The number fast path: a reason, or None when either side is not a plain number."""
    (p, p_pct), (g, g_pct) = split_percent(p), split_percent(g)
    try:
        pn, gn = parse_number(p), parse_number(g)
        if (pn is None) != (gn is None):  # `3,5` vs 3.5: a decimal comma (numbers.decimal_comma)
            other = pn or gn
            comma = decimal_comma(p if pn is None else g)
            if comma is not None and other.value.denominator != 1:
                pn, gn = (parse_number(comma), gn) if pn is None else (pn, parse_number(comma))
    except TooLarge:
        return "too_large"
    if pn is None or gn is None:
        return None
    return _verdict(numbers_equal(pn, p_pct, gn, g_pct, options.rel_tol, options.percent_as_fraction))


def compare_numeric(pred: str, gold: str, options: Options) -> str:
    prepared = _prepare(pred, gold)
    if isinstance(prepared, str):
        return prepared
    return _numbers(*prepared, options) or "unparsable"


# ---- math mode --------------------------------------------------------------------------------

_CHOICE = re.compile(r"\(([A-Ea-e])\)")
_WORDS = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")


def _as_text(answer: str) -> str | None:
    """Lower-case words for a text answer (`Evelyn`, `\\text{(C)}`, `even`), else None.

    Short letter runs stay math (`xy` is x*y); a word of 3+ letters that is no math name is text.
    """
    if _CHOICE.fullmatch(answer):
        return answer[1].lower()
    if _WORDS.fullmatch(answer):
        words = answer.lower().split()
        if words in (["yes"], ["no"]):
            return words[0]
        if max(map(len, words)) >= 3 and not any(w in PLAIN_NAMES for w in words):
            return " ".join(words)
    return None


@lru_cache(maxsize=16384)
def parse_checked(answer: str) -> tuple | str:
    """The bounded answer tree, or the reason it has none (cached: golds repeat every step)."""
    try:
        tree = parse(answer)
        check_bounds(tree)
        return tree
    except TooLarge:
        return "too_large"
    except (Unparsable, RecursionError):
        return "unparsable"


def _readings(answer: str, options: Options) -> list[tuple] | str:
    answer, percent = split_percent(answer)
    tree = parse_checked(answer)
    if isinstance(tree, str):
        return tree
    if percent and options.percent_as_fraction and tree[0] not in ("seq", "eq", "matrix", "union"):
        return [tree, ("div", tree, ("num", 100))]
    return [tree]


def compare_math(pred: str, gold: str, options: Options) -> str:
    """Two answers in math mode; when they are not equal as written and a side carries
    wrappers or prose (`Answer: $12$`, `the smallest $k$ is 7`), the answers inside are
    compared instead (extract.unwrap: golds may be written like completions, up to a whole
    worked solution; one longer than an answer can be is unwrapped first)."""
    if len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        pred, gold = unwrap(pred) or pred, unwrap(gold) or gold
    reason = _compare_math(pred, gold, options)
    if reason == "equal" or reason == "too_large":
        return reason
    inner_pred, inner_gold = unwrap(pred), unwrap(gold)
    if inner_pred is not None or inner_gold is not None:
        pred, gold = inner_pred or pred, inner_gold or gold
        reason = _compare_math(pred, gold, options)
    readings_p, readings_g = _choice_readings(pred), _choice_readings(gold)
    if reason == "equal" or len(readings_p) + len(readings_g) == 2:
        return reason
    return next(("equal" for p in readings_p for g in readings_g
                 if _compare_math(p, g, options) == "equal"), reason)


_CHOICE_VALUE = re.compile(r"\(([A-E])\)\s+([^\s+*/^=<>].{0,200})")  # `(C) + 1` is arithmetic


def _choice_readings(answer: str) -> list[str]:
    """`(B) 7`, `\\textbf{(B) } 7`: a multiple-choice answer is its letter, and its value."""
    m = _CHOICE_VALUE.fullmatch(normalize(answer)) if "(" in answer else None
    return [answer] if m is None else [f"({m.group(1)})", m.group(2)]


def _compare_math(pred: str, gold: str, options: Options) -> str:
    prepared = _prepare(pred, gold)
    if isinstance(prepared, str):
        return prepared
    p, g = prepared
    text_p, text_g = _as_text(p), _as_text(g)
    if text_p is not None or text_g is not None:  # a name or a choice: compare as words
        return _verdict((text_p or p.lower().strip("() ")) == (text_g or g.lower().strip("() ")))
    fast = _numbers(p, g, options)
    if fast is not None:
        return fast
    preds, golds = _readings(p, options), _readings(g, options)
    if isinstance(preds, str):
        return preds
    if isinstance(golds, str):
        return "unparsable" if golds == "unparsable" else golds
    budget = Budget(options.rel_tol, time.monotonic() + options.timeout)
    try:
        return _verdict(any(answer_equal(a, b, budget) for a in preds for b in golds))
    except WorkerTimeout:
        return "timeout"
    except (TooLarge, WorkerCrashed):  # the worker dies only at its memory limit
        return "too_large"
    except RecursionError:
        return "too_large"


MODES = {"numeric": compare_numeric, "math": compare_math, "exact": compare_exact}
