"""Plain numbers: the fast path that never reaches the parser, SymPy or the worker.

Integers, decimals, scientific notation, `a/b`, `\\frac{a}{b}`, mixed numbers (`1\\frac{4}{5}`,
`2 1/2`) and a trailing `%` become an exact `fractions.Fraction`. Equality is exact unless a side
was written as a decimal (a rounded value): then `rel_tol` applies, and a decimal of 4+ significant
digits also equals an exact value that rounds to it (`1.6667` == 5/3, rounding_tolerance).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from mathrl.verify.limits import MAX_DIGITS, MAX_SCI_EXPONENT, TooLarge

_INT = r"\d+"
_DEC = r"(?:\d+\.\d*|\.\d+)"
_NUMBER = re.compile(
    r"(?P<sign>[-+]?)\s*(?:"
    rf"(?P<sci>(?:{_DEC}|{_INT})\s*[eE]\s*[-+]?\d+)"
    rf"|(?P<mixed>{_INT})(?:\s*\\frac\{{\s*(?P<mn>{_INT})\s*\}}\{{\s*(?P<md>{_INT})\s*\}}|\s+(?P<pn>{_INT})\s*/\s*(?P<pd>{_INT}))"
    rf"|\\frac\{{\s*(?P<fsign>-?)\s*(?P<fn>{_INT})\s*\}}\{{\s*(?P<fd>{_INT})\s*\}}"
    rf"|(?P<sn>{_INT})\s*/\s*(?P<sd>{_INT})"
    rf"|(?P<dec>{_DEC})"
    rf"|(?P<int>{_INT})"
    r")"
)


MIN_ROUNDED_DIGITS = 4  # significant digits a decimal needs to stand for an exact value


@dataclass(frozen=True)
class Number:
    value: Fraction
    approximate: bool  # written with a decimal point or exponent: the writer may have rounded
    tolerance: Fraction | None = None  # rounding_tolerance of the digits written, if any


def rounding_tolerance(text: str) -> Fraction | None:
    """Half a unit in the last digit written (`1.6667` -> 0.00005), when the decimal has at
    least MIN_ROUNDED_DIGITS significant digits; else None (`0.333` does not stand for 1/3,
    nor `3.14` for pi: a short decimal is too coarse to show the exact value was found).

    A decimal against an exact value is equal when the exact value rounds to it: the digits
    written are the precision claimed, entry by entry. Two decimals compare with rel_tol.
    """
    mantissa, _, exponent = text.replace(" ", "").lower().lstrip("+-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    if len((whole + fraction).lstrip("0")) < MIN_ROUNDED_DIGITS:
        return None
    if exponent and abs(int(exponent)) > MAX_SCI_EXPONENT:
        return None
    return Fraction(1, 2) * Fraction(10) ** (int(exponent or 0) - len(fraction))


def split_percent(answer: str) -> tuple[str, bool]:
    """`50%` -> ("50", True). The percent sign is a unit unless the task opts into 50% == 0.5."""
    s = answer.rstrip()
    if s.endswith("%"):
        return s[:-1].rstrip(), True
    return answer, False


_DECIMAL_COMMA = re.compile(r"(-?\d+),(\d{1,2}|\d{4,})")


def decimal_comma(answer: str) -> str | None:
    """`3,5` -> `3.5`: the European reading of a number with one comma and not three digits
    after it (three would be a thousands separator). The same text is also the list 3, 5, so
    callers use this reading only against a number that is not an integer."""
    m = _DECIMAL_COMMA.fullmatch(answer.strip())
    return f"{m.group(1)}.{m.group(2)}" if m else None


def _int(digits: str) -> int:
    if len(digits) > MAX_DIGITS:
        raise TooLarge("number literal too long")
    return int(digits)


def _decimal(text: str) -> Fraction:
    # no need to drop the spaces the regex allows around the `e`: Fraction() and int() strip them
    mantissa, _, exponent = text.lower().partition("e")
    if sum(ch.isdigit() for ch in mantissa) > MAX_DIGITS:
        raise TooLarge("number literal too long")
    if exponent and abs(int(exponent)) > MAX_SCI_EXPONENT:
        raise TooLarge("exponent too large")
    value = Fraction(mantissa)
    return value * Fraction(10) ** int(exponent) if exponent else value


def _ratio(num: str, den: str) -> Fraction | None:
    d = _int(den)
    return None if d == 0 else Fraction(_int(num), d)


def parse_number(answer: str) -> Number | None:
    """The exact value of a normalised answer that is one plain number, else None."""
    if answer.isascii() and answer.isdigit():  # the GSM8K hot path
        return Number(Fraction(_int(answer)), False)
    m = _NUMBER.fullmatch(answer.strip())
    if m is None:
        return None
    g = m.groupdict()
    approximate, tolerance = False, None
    if g["int"] is not None:
        value = Fraction(_int(g["int"]))
    elif g["dec"] is not None or g["sci"] is not None:
        value, approximate = _decimal(g["dec"] or g["sci"]), True
        tolerance = rounding_tolerance(g["dec"] or g["sci"])
    elif g["sn"] is not None:
        value = _ratio(g["sn"], g["sd"])
    elif g["fn"] is not None:
        value = _ratio(g["fn"], g["fd"])
        value = -value if value is not None and g["fsign"] else value
    else:  # mixed number: 1 4/5 = 9/5; the fraction part must be proper, else it's a product
        part = _ratio(g["mn"] or g["pn"], g["md"] or g["pd"])
        if part is None or not 0 <= part < 1:
            return None
        value = _int(g["mixed"]) + part
    if value is None:
        return None
    return Number(-value if g["sign"] == "-" else value, approximate, tolerance)


def close(a: Fraction, b: Fraction, approximate: bool, rel_tol: float) -> bool:
    """Exact equality, or within rel_tol of the larger magnitude when a side was rounded."""
    if a == b:
        return True
    if not approximate:
        return False
    return abs(a - b) <= Fraction(rel_tol) * max(abs(a), abs(b))


def candidates(value: Fraction, percent: bool, percent_as_fraction: bool) -> tuple[Fraction, ...]:
    """The values an answer may stand for: `50%` is 50, and also 0.5 when the task allows."""
    return (value, value / 100) if percent and percent_as_fraction else (value,)


def numbers_equal(pred: Number, pred_pct: bool, gold: Number, gold_pct: bool,
                  rel_tol: float, percent_as_fraction: bool) -> bool:
    approximate = pred.approximate or gold.approximate
    tolerance = None
    if pred.approximate != gold.approximate:  # one rounded decimal, one exact value
        tolerance = (pred if pred.approximate else gold).tolerance
    return any(close(p, g, approximate, rel_tol) or (tolerance is not None and abs(p - g) <= tolerance)
               for p in candidates(pred.value, pred_pct, percent_as_fraction)
               for g in candidates(gold.value, gold_pct, percent_as_fraction))
