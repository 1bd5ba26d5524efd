"""check_steps: per-calculation arithmetic checks for process supervision."""

import pytest

from mathrl.verify import check_steps

# (text, expected [(text before the offset ends with, correct)])
CASES = [
    ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.", [("<<16-3-4=9>>", True)]),
    ("She makes 9 * 2 = $<<9*2=17>>17 every day.", [("<<9*2=17>>", False)]),
    ("It takes 2/2=<<2/2=1>>1 bolt\nSo 2+1=<<2+1=3>>3", [("<<2/2=1>>", True), ("<<2+1=3>>", True)]),
    ("3 x 4 = 12 and 12 ÷ 4 = 3", [("3 x 4 = 12", True), ("12 ÷ 4 = 3", True)]),
    ("(3+4)*2 = 14", [("(3+4)*2 = 14", True)]),
    ("-3 + 5 = 2", [("-3 + 5 = 2", True)]),
    ("1,000 + 2,000 = 3,000 dollars", [("= 3,000", True)]),
    ("$1.50 * 4 = $6.00.", [("$6.00", True)]),
    (".20*20 = $4.00", [("$4.00", True)]),
    ("80*50% = 40", [("= 40", True)]),
    ("12/20 x 100% = 60%", [("60%", True)]),
    ("10/3 = 3.33", [("3.33", True)]),  # rounded to the written decimals
    ("10/3 = 3.34", [("3.34", False)]),
    ("10/3 = 3", [("= 3", False)]),  # an integer result must be exact
    ("1 – 3/4 = 1/4", [("1/4", True)]),  # en dash as minus, a fraction as result
    ("5+2(3)=5+6=11", [("=5+6", True), ("=11", True)]),  # a chain: every side equal
    ("2*3 = 6*2 = 12", [("= 6*2", False), ("= 12", True)]),
    ("x = 5 + 3 = 8", [("= 8", True)]),
    ("2x + 3 = 7", []),  # algebra, not arithmetic
    ("60g * 4/5 = 240", []),  # the calculation's first operand is not a number
    ("The answer is 42.", []), ("48 = 48", []), ("", []),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_check_steps(text, expected):
    steps = check_steps(text)
    assert [ok for _, ok in steps] == [ok for _, ok in expected]
    for (offset, _), (suffix, _) in zip(steps, expected):
        assert text[:offset].endswith(suffix), (text[:offset], suffix)


def test_offsets_count_from_the_start_of_the_text():
    text = "First line.\nThen 2+2=4.\nThen 3*3=10."
    steps = check_steps(text)
    assert [text[:end].rsplit("\n", 1)[-1] for end, _ in steps] == ["Then 2+2=4", "Then 3*3=10"]
    assert [ok for _, ok in steps] == [True, False]


def test_long_lines_stay_linear():
    import time

    start = time.monotonic()
    check_steps("1 + " * 20_000 + "x")  # no `=`: a backtracking regex would be quadratic
    assert check_steps("1+1=2 " * 1_000)[-1] == (6 * 1_000 - 1, True)
    assert time.monotonic() - start < 5
