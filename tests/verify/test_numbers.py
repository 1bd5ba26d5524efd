"""The number fast path by hand: parsing, the size limits at their edges, rounding tolerance.

Written for the survivors of the mutation run (results/mutation/): each test names the one-line
bug it would catch.
"""

from fractions import Fraction

import pytest

from mathrl.verify.limits import MAX_DIGITS, MAX_SCI_EXPONENT, TooLarge
from mathrl.verify.numbers import close, numbers_equal, parse_number, rounding_tolerance


def test_scientific_notation_may_carry_spaces_around_the_exponent():
    # _decimal must drop the spaces before splitting at "e" (else Fraction("1.5 ") raises)
    assert parse_number("1.5 e 3").value == 1500
    assert parse_number("2 E-2").value == Fraction(1, 50)


def test_a_decimal_of_exactly_max_digits_parses_and_one_more_is_too_large():
    digits = "1" * (MAX_DIGITS - 1)
    assert parse_number(f"{digits}.5").value == Fraction(int(digits + "5"), 10)  # MAX_DIGITS digits
    with pytest.raises(TooLarge):
        parse_number(f"{digits}1.5")


def test_an_exponent_of_exactly_the_limit_parses_and_one_more_is_too_large():
    assert parse_number(f"1.5e{MAX_SCI_EXPONENT}").value == Fraction(15, 10) * 10 ** MAX_SCI_EXPONENT
    with pytest.raises(TooLarge):
        parse_number(f"1.5e{MAX_SCI_EXPONENT + 1}")


def test_a_fraction_over_zero_is_no_number():
    assert parse_number("1/0") is None
    assert parse_number("\\frac{3}{0}") is None
    assert parse_number("2 1/0") is None


def test_close_includes_the_boundary_of_the_relative_tolerance():
    assert close(Fraction(100), Fraction(99), True, 0.01)  # |1| <= 0.01 * 100
    assert not close(Fraction(100), Fraction(98), True, 0.01)
    assert not close(Fraction(100), Fraction(99), False, 0.01)  # exact sides: no tolerance


@pytest.mark.parametrize("text, tolerance", [
    ("1.2345", Fraction(1, 20000)),
    ("-1.2345", Fraction(1, 20000)),
    ("+12.34", Fraction(1, 200)),
    ("1.2345e2", Fraction(1, 200)),       # the exponent moves the last digit: 123.45
    ("1.2345E-1", Fraction(1, 200000)),
    ("1.2345 e 2", Fraction(1, 200)),     # spaces around the exponent, as the regex allows
    ("12345e-2", Fraction(1, 200)),       # an integer mantissa: no fraction digits
    ("0.001234", Fraction(1, 2000000)),   # leading zeros are not significant, trailing digits are
    ("-1.23", None),                      # three significant digits: the sign is not a digit
    ("1.23", None),
    ("0.0123", None),
    (f"1.2345e{MAX_SCI_EXPONENT}", Fraction(1, 2) * Fraction(10) ** (MAX_SCI_EXPONENT - 4)),
    (f"1.2345e{MAX_SCI_EXPONENT + 1}", None),
    (f"1.2345e-{MAX_SCI_EXPONENT + 1}", None),
])
def test_rounding_tolerance_is_half_a_unit_in_the_last_digit_written(text, tolerance):
    assert rounding_tolerance(text) == tolerance


def _equal(pred: str, gold: str, rel_tol: float = 1e-6) -> bool:
    return numbers_equal(parse_number(pred), False, parse_number(gold), False, rel_tol, False)


def test_a_rounded_decimal_equals_the_exact_value_on_either_side():
    assert _equal("1.6667", "5/3")
    assert _equal("5/3", "1.6667")  # the gold is the rounded side: its tolerance applies
    assert _equal("1.667", "5/3")  # four significant digits claim the exact value
    assert not _equal("1.67", "5/3")  # three do not
    assert not _equal("1.6668", "5/3")


def test_the_rounding_tolerance_includes_its_boundary():
    # 1.2345 stands for every value within half a unit of its last digit, 1.23455 included
    assert _equal("1.2345", "123455/100000")
    assert not _equal("1.2345", "123456/100000")


@pytest.mark.parametrize("text, value", [("1 4/5", Fraction(9, 5)), ("1 0/5", Fraction(1)), ("1 5/5", None),
                                         ("1 6/5", None), ("2\\frac{1}{2}", Fraction(5, 2))])
def test_a_mixed_numbers_fraction_part_is_proper(text, value):
    """0 <= part < 1: 1 0/5 is 1; 1 5/5 and 1 6/5 are not mixed numbers (a product, if anything)."""
    parsed = parse_number(text)
    assert (parsed and parsed.value) == value
