"""mathrl.verify.expression: the safe parse-and-evaluate helper that grader hooks use."""

from fractions import Fraction

import pytest

from mathrl.verify.expression import ExpressionError, parse_expression


@pytest.mark.parametrize("text, value", [
    ("94*4 - 61 - 6", 309),
    ("(94 \\times 4) - (61 + 6)", 309),  # LaTeX
    ("94 × 4 − 67", 309),  # unicode operators
    ("\\frac{46 \\cdot 2}{2}", 46),
    ("12/3 + 3", 7),
    ("7/2", Fraction(7, 2)),  # exact, not 3.5 in floating point
    ("-3 + 5", 2),
    ("2^{10}", 1024),
])
def test_values_are_exact_rationals(text, value):
    assert parse_expression(text).value() == value


def test_numbers_and_operations_are_read_from_the_tree():
    expr = parse_expression("(3 + 5) * 2 - -1")
    assert expr.numbers() == [3, 5, 2, 1]
    assert expr.operations() == {"add", "mul", "sub", "neg"}
    assert parse_expression("\\sqrt{16} + 2^3").operations() == {"add", "fn:sqrt", "pow"}


@pytest.mark.parametrize("text, reason", [
    ("__import__('os').system('echo pwned')", "unparsable"),
    ("lambda: 0", "not_an_expression"),  # a structure to the parser, never code
    ("9**9**9**9", "too_large"),  # refused before anything is evaluated
    ("2^{2^{2^{2^{2^{2}}}}}", "too_large"),
    ("(10!)!", "too_large"),
    ("1+" * 500_000 + "1", "too_large"),  # 1 MB
    ("(" * 10_000 + "1" + ")" * 10_000, "too_large"),
    ("1, 2", "not_an_expression"),
    ("x = 3", "not_an_expression"),
])
def test_hostile_or_non_expressions_raise_with_a_reason(text, reason):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert info.value.reason == reason


@pytest.mark.parametrize("text", ["x + 1", "\\pi", "\\sqrt{2}", "1/0", "5/(3-3)"])
def test_values_without_a_rational_raise_not_rational(text):
    expr = parse_expression(text)
    with pytest.raises(ExpressionError) as info:
        expr.value()
    assert info.value.reason == "not_rational"
