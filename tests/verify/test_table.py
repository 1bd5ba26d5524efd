"""Equivalence tables: every category of the checker, equal and not equal, in math mode.

Each row is (pred, gold). Rows were written by hand from MATH / GSM8K answer styles and from
the ways models restate them; the NOT_EQUAL rows are the near misses a lax checker accepts.
"""

import pytest

from mathrl.verify import compare, equivalent

EQUAL = {
    "strings": [
        ("5", "5"), ("x^2+1", "x^2 + 1"), (" 42 ", "42"), ("\\text{Evelyn}", "Evelyn"),
        ("\\text{east}", "east"), ("\\text{(C)}", "(C)"), ("\\text{(C)}", "C"), ("EVEN", "\\text{even}"),
        ("\\textbf{ellipse}", "\\text{ellipse}"), ("$5$", "5"), ("\\(5\\)", "5"), ("\\[5\\]", "5"),
        ("\\boxed{5}", "5"), ("\\boxed{\\frac{1}{2}}", "\\frac12"),
    ],
    "normalisation": [
        ("1,000", "1000"), ("10{,}000", "10000"), ("11,\\! 111,\\! 111,\\! 100", "11111111100"),
        ("1,234,567", "1234567"), ("\\$32,\\!348", "32348"), ("\\$18.90", "18.90"), ("$18", "18"),
        ("18 dollars", "18"), ("5.4 \\text{ cents}", "5.4"), ("864 \\mbox{ inches}^2", "864"),
        ("15\\mbox{ cm}^2", "15"), ("10cm", "10"), ("30^\\circ", "30"), ("30^{\\circ}", "30"),
        ("30°", "30"), ("1 000 000", "10^6"), ("\\cfrac{1}{2}", "0.5"),
        ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}"), ("5.", "5"), ("5;", "5"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"), ("\\dfrac{3}{4}", "\\frac34"),
        ("\\tfrac{3}{4}", "3/4"), ("\\frac 59", "5/9"), ("\\frac9{19}", "9/19"), ("\\sqrt2", "\\sqrt{2}"),
        ("11\\sqrt2", "11\\sqrt{2}"), ("52_8", "52"), ("4210_{5}", "4210"), ("−3", "-3"),
        ("3 × 4", "12"), ("\\displaystyle \\frac{1}{2}", "0.5"), ("x \\in [-2,7]", "[-2,7]"),
        ("18 eggs.", "18"), ("+5", "5"), ("5 \\text{ apples}", "5"), ("2\\,000", "2000"),
        ("\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]", "[\\pi^2/8, 5\\pi^2/4]"),
    ],
    "numbers": [
        ("0.5", "\\frac{1}{2}"), ("1/2", "0.5"), ("2/4", "\\frac12"), ("-0.25", "-\\frac{1}{4}"),
        ("\\frac{-1}{4}", "-1/4"), (".5", "0.5"), ("0.50", "0.5"), ("18.0", "18"), ("1e3", "1000"),
        ("1.5E3", "1500"), ("2.5e-3", "0.0025"), ("1\\frac{4}{5}", "\\frac{9}{5}"),
        ("137 \\frac{1}{2}", "137.5"), ("2 1/2", "5/2"), ("-1\\frac{1}{2}", "-1.5"),
        ("0.333333333", "\\frac13"), ("3.1415926536", "\\pi"), ("1.414213562", "\\sqrt2"),
        ("100", "1e2"), ("007", "7"), ("1,000,000", "10^6"), ("1.5\\times10^{3}", "1500"),
        ("3\\cdot 10^2", "300"), ("2^{10}", "1024"), ("\\frac{3}{6}", "\\frac{1}{2}"),
        (".35625", "0.35625"), (".0000672", "6.72e-5"), ("4.5", "\\frac92"), ("326.5", "653/2"),
        ("-0", "0"), ("50%", "50"), ("50\\%", "50"), ("12.5 percent", "12.5"),
    ],
    "symbolic": [
        ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}"), ("\\frac{3\\sqrt{3}}{4}", "0.75\\sqrt3"),
        ("2\\sqrt{5}", "\\sqrt{20}"), ("\\sqrt{8}", "2\\sqrt2"), ("3\\sqrt{13}", "\\sqrt{117}"),
        ("\\sqrt{12}", "2 \\sqrt 3"), ("\\frac{\\pi}{2}", "\\pi/2"), ("-\\frac{\\pi}{6}", "-\\pi/6"),
        ("\\frac{20000}{\\pi}", "20000/\\pi"), ("7\\pi", "\\pi \\cdot 7"), ("2\\pi r", "2 r \\pi"),
        ("18+2\\pi", "2\\pi+18"), ("x^2+2x+1", "(x+1)^2"), ("(a+5)(b+2)", "ab+2a+5b+10"),
        ("2x+2", "2(x+1)"), ("x \\cdot y", "xy"), ("x \\times y", "yx"), ("x*y", "y x"),
        ("6 - 5i", "-5i + 6"), ("1+2i", "i \\cdot 2+1"), ("(1+i)^2", "2i"), ("i^2", "-1"),
        ("e^{i\\pi}", "-1"), ("\\sin^2 x + \\cos^2 x", "1"), ("\\cot x", "\\frac{\\cos x}{\\sin x}"),
        ("\\sqrt[3]{-8}", "-2"), ("\\sqrt[3]{27}", "3"), ("8^{2/3}", "4"), ("4^{1/2}", "2"),
        ("\\frac{x^2-1}{x-1}", "x+1"), ("x^5 - x^4 + x^3 - x^2 + x - 1", "(x-1)(x^4+x^2+1)"),
        ("\\frac{11+9a}{20}", "\\frac{11}{20}+\\frac{9a}{20}"), ("8n^2 + 4n + 1", "1+4n+8n^2"),
        ("6r^2-4r-24", "2(3r^2-2r-12)"), ("5r^5", "5 r^5"), ("3R^2", "3 R^2"), ("2k+2", "2(k+1)"),
        ("\\log_2 8", "3"), ("\\ln(e^2)", "2"), ("\\exp(0)", "1"), ("|-3|", "3"), ("5!", "120"),
        ("\\binom{5}{2}", "10"), ("\\lfloor 2.5 \\rfloor", "2"), ("\\lceil 2.1 \\rceil", "3"),
        ("\\sin(\\pi/6)", "1/2"), ("\\cos 0", "1"), ("\\tan(\\pi/4)", "1"), ("\\arctan 1", "\\pi/4"),
        ("\\sin^{-1}(1)", "\\pi/2"), ("2^{2^{2}}", "16"), ("x_1 + x_2", "x_2 + x_1"),
        ("\\theta + \\alpha", "\\alpha+\\theta"), ("sqrt(2)/2", "\\frac{\\sqrt2}{2}"),
        ("2pi", "2\\pi"), ("x**2", "x^2"), ("\\frac{1}{\\frac{1}{x}}", "x"), ("-x^2", "-(x^2)"),
        ("10^{300}\\sqrt{2} + 1 - 10^{300}\\sqrt{2}", "1"), ("\\sqrt{2}\\sqrt{3}", "\\sqrt6"),
        ("\\frac{1+\\sqrt5}{2}", "\\frac{2}{\\sqrt5-1}"), ("11 \\sqrt{5} + 11", "11(\\sqrt5+1)"),
        ("288 \\pi", "288\\pi"), ("\\pi^2/8", "\\frac{\\pi^2}{8}"), ("x^{-1}", "1/x"),
    ],
    "tuples_and_intervals": [
        ("(1,2)", "(1, 2)"), ("(1,-16,-4,43)", "(1, -16, -4, 43)"), ("(6,31,-1)", "(6, 31, -1)"),
        ("\\left( \\frac{3}{2}, -13 \\right)", "(1.5,-13)"), ("(0.5, 1)", "(\\frac12, 1)"),
        ("(-\\infty, 0]", "(-\\infty,0]"), ("(5,\\infty)", "(5, \\infty)"), ("(3,4]", "(3, 4]"),
        ("[-2,7]", "[-2, 7]"), ("\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "(0.6, 8/3]"),
        ("(-\\sqrt{3}, \\sqrt{3})", "(-\\sqrt3,\\sqrt3)"), ("x > 2", "(2,\\infty)"),
        ("x \\ge 2", "[2,\\infty)"), ("x < 5", "(-\\infty, 5)"), ("-2 \\le x < 7", "[-2,7)"),
        ("3 > x", "(-\\infty, 3)"), ("(0,9) \\cup (9,36)", "(9,36) \\cup (0,9)"),
        ("(-\\infty, 2) \\cup (3, \\infty)", "(-\\infty,2)\\cup(3,\\infty)"), ("1, 2", "(1,2)"),
        ("(2,12) \\cup (12,102)", "(2, 12)\\cup(12, 102)"), ("[1,2,3]", "(1,2,3)"),
    ],
    "sets_and_lists": [
        ("3, 5, 7", "7, 5, 3"), ("1,-2", "-2, 1"), ("-2,1", "1,-2"), ("\\{1,2\\}", "\\{2,1\\}"),
        ("\\{1,2\\}", "2, 1"), ("\\{5\\}", "5"), ("\\emptyset", "\\varnothing"),
        ("\\{1\\pm\\sqrt{5},-2\\}", "1+\\sqrt5, 1-\\sqrt5, -2"), ("x=1, x=2", "1, 2"),
        ("x = 1, 2", "2, 1"), ("\\frac12, \\frac13", "1/3, 0.5"), ("1, 1, 2", "1, 2, 1"),
        ("x=2 \\text{ or } x=3", "2, 3"), ("5 \\text{ and } 7", "7, 5"), ("3 or 4", "\\{3,4\\}"),
        ("\\lbrace 1,2 \\rbrace", "\\{1,2\\}"), ("\\left\\{ 1, 2 \\right\\}", "\\{2,1\\}"),
    ],
    "plus_minus": [
        ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}"), ("3 \\pm 2 \\sqrt{2}", "3-2\\sqrt2, 3+2\\sqrt2"),
        ("\\pm 2", "2, -2"), ("x = 1 \\pm \\sqrt 2", "1-\\sqrt2, 1+\\sqrt2"), ("\\pm\\sqrt{2}", "-\\sqrt2, \\sqrt2"),
        ("1 \\mp 2", "-1, 3"), ("2 \\pm 1", "\\{1, 3\\}"),
    ],
    "equations": [
        ("x=5", "5"), ("5", "x = 5"), ("y = 2x + 3", "2x+3"), ("2x + 3 = y", "y = 2x + 3"),
        ("y = -2x", "-2x"), ("k = \\frac12", "0.5"), ("5x - 7y + 11z + 4 = 0", "5x-7y+11z+4=0"),
        ("5x - 7y + 11z = -4", "5x - 7y + 11z + 4 = 0"), ("-5x + 7y - 11z - 4 = 0", "5x - 7y + 11z + 4 = 0"),
        ("y = x^2", "x^2 = y"), ("(x,y) = (1,2)", "(1,2)"), ("x + y = 1", "y + x = 1"),
    ],
    "matrices": [
        ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}"),
        ("\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
         "\\begin{pmatrix} -\\frac13 \\\\ \\frac23 \\\\ \\frac53 \\end{pmatrix}"),
        ("\\begin{bmatrix} 1 & 2 \\end{bmatrix}", "\\begin{pmatrix} 1 & 2 \\end{pmatrix}"),
        ("\\begin{pmatrix} 16/49 \\\\ 48/49 \\\\ 24/49 \\end{pmatrix}", "(16/49, 48/49, 24/49)"),
        ("\\begin{pmatrix} 0.5 & 1 \\\\ 2 & 3 \\end{pmatrix}", "\\begin{pmatrix} 1/2 & 1 \\\\ 2 & 3 \\end{pmatrix}"),
        ("\\begin{pmatrix} x+1 \\\\ 2x \\end{pmatrix}", "\\begin{pmatrix} 1+x \\\\ x+x \\end{pmatrix}"),
    ],
}

NOT_EQUAL = {
    "strings": [
        ("\\text{Evelyn}", "\\text{Navin}"), ("east", "\\text{west}"), ("(B)", "\\text{(C)}"),
        ("odd", "\\text{even}"), ("ellipse", "\\text{circle}"), ("neve", "\\text{even}"),
    ],
    "numbers": [
        ("2", "3"), ("0.5", "0.55"), ("1/3", "0.33"), ("0.333", "\\frac13"), ("18", "-18"),
        ("1000", "100"), ("1,000", "1.000"), ("1e3", "1e4"), ("2 1/2", "2"), ("1\\frac{4}{5}", "\\frac45"),
        ("3.14", "\\pi"), ("1.41", "\\sqrt2"), ("\\frac{1}{3}", "\\frac{1000001}{3000000}"),
        ("50%", "0.5"), ("0.5", "50\\%"), ("12", "12.5"), ("-0.25", "0.25"), ("2^{10}", "1000"),
        ("100", "10"), ("7", "77"), ("10^6", "10^7"), ("2 1/2", "21/2"),
    ],
    "symbolic": [
        ("\\sqrt{2}", "2"), ("\\sqrt{8}", "3\\sqrt2"), ("\\pi", "2\\pi"), ("x^2", "2x"),
        ("(x+1)^2", "x^2+1"), ("2x+2", "2x+1"), ("x", "|x|"), ("\\sqrt{x^2}", "x"), ("xy", "x+y"),
        ("6-5i", "6+5i"), ("i", "1"), ("\\sin x", "\\cos x"), ("\\frac{x}{2}", "2x"),
        ("x^5 - x^4 + x^3 - x^2 + x - 1", "x^5 + x^4 + x^3 + x^2 + x + 1"), ("\\log_2 8", "2"),
        ("\\frac{11+9a}{20}", "\\frac{11+9a}{21}"), ("5!", "100"), ("e", "2.7"), ("p - q", "q - p"),
        ("10^{300}\\sqrt{2} + 1 - 10^{300}\\sqrt{2}", "2"), ("\\sqrt[3]{-8}", "2"), ("x^{-1}", "-x"),
        ("2\\sqrt{5}", "5\\sqrt{2}"), ("x", "y"), ("a+5", "a+6"), ("\\arctan 1", "\\pi/3"),
    ],
    "tuples_and_intervals": [
        ("(1,2)", "(2,1)"), ("(1,2)", "[1,2]"), ("[1,2)", "(1,2]"), ("(1,2,3)", "(1,2)"),
        ("(0,9) \\cup (9,36)", "(0,36)"), ("(-\\infty, 0]", "(-\\infty, 0)"), ("x > 2", "[2,\\infty)"),
        ("(5,\\infty)", "(5, 10)"), ("(1,2)", "\\{1,2\\}"), ("[-2,7]", "[-2,8]"), ("(0.5,1)", "(0.6,1)"),
        ("(-\\infty, 2) \\cup (3, \\infty)", "(-\\infty, 2) \\cup (4, \\infty)"),
    ],
    "sets_and_lists": [
        ("1, 2", "1, 3"), ("1, 2, 3", "1, 2"), ("\\{1,2\\}", "\\{1,2,3\\}"), ("\\emptyset", "\\{0\\}"),
        ("1, 1, 2", "1, 2, 2"), ("\\{5\\}", "6"),
    ],
    "plus_minus": [
        ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}"), ("1 \\pm \\sqrt{19}", "1 \\pm \\sqrt{18}"), ("\\pm 2", "2"),
        ("3 \\pm 2 \\sqrt{2}", "3+2\\sqrt2, 3+2\\sqrt2"),
    ],
    "equations": [
        ("x=5", "6"), ("y = 2x + 3", "2x + 4"), ("y = 2x + 3", "y = 3x + 2"), ("x + y = 1", "x - y = 1"),
        ("x^2 + y = 3", "3"), ("5x - 7y + 11z + 4 = 0", "5x - 7y + 11z - 4 = 0"),
    ],
    "matrices": [
        ("\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}", "\\begin{pmatrix} 1 & 0 \\\\ 0 & -1 \\end{pmatrix}"),
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\end{pmatrix}"),
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(2, 1)"),
        ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}"),
    ],
}


def _rows(table):
    return [pytest.param(p, g, id=f"{cat}:{p}|{g}") for cat, rows in table.items() for p, g in rows]


@pytest.mark.parametrize("pred, gold", _rows(EQUAL))
def test_equal(pred, gold):
    assert compare(pred, gold) == "equal"
    assert compare(gold, pred) == "equal"  # equivalence is symmetric


@pytest.mark.parametrize("pred, gold", _rows(NOT_EQUAL))
def test_not_equal(pred, gold):
    assert compare(pred, gold) == "not_equal"
    assert compare(gold, pred) == "not_equal"


PERCENT = [("50%", "0.5", True), ("0.5", "50\\%", True), ("12.5\\%", "\\frac18", True),
           ("50%", "0.5", False), ("150 percent", "1.5", True), ("50%", "50", True)]


@pytest.mark.parametrize("pred, gold, allowed", PERCENT)
def test_percent_as_fraction_is_opt_in(pred, gold, allowed):
    # 50% == 50 always (the sign is a unit); 50% == 0.5 only when the task allows it.
    expected = allowed or gold.rstrip("\\%") == pred.rstrip("%")
    assert equivalent(pred, gold, percent_as_fraction=allowed) is expected


@pytest.mark.parametrize("pred, gold, rel_tol, expected", [
    ("3.14", "\\pi", 1e-3, True), ("3.14", "\\pi", 1e-4, False), ("0.33", "1/3", 0.02, True),
    ("1.0001", "1", 1e-3, True), ("1.0001", "1", 1e-6, False), ("\\frac{1001}{1000}", "1", 0.1, False),
])
def test_rel_tol_applies_to_rounded_decimals_only(pred, gold, rel_tol, expected):
    # A fraction written exactly (1001/1000) is never "close enough": only decimals are rounded.
    assert equivalent(pred, gold, rel_tol=rel_tol) is expected


@pytest.mark.parametrize("pred, gold, mode, reason", [
    ("18", "18", "numeric", "equal"), ("18.00", "18", "numeric", "equal"), ("1,000", "1000", "numeric", "equal"),
    ("$18", "18", "numeric", "equal"), ("18 dollars", "18", "numeric", "equal"), ("3/4", "0.75", "numeric", "equal"),
    ("17", "18", "numeric", "not_equal"), ("x+1", "18", "numeric", "unparsable"),
    ("\\sqrt{4}", "2", "numeric", "unparsable"), ("2\\pi", "2\\pi", "numeric", "equal"),
    ("Evelyn", "\\text{Evelyn}", "exact", "equal"), ("0.5", "\\frac12", "exact", "not_equal"),
    ("x^2 + 1", "x^2+1", "exact", "equal"), ("\\frac{1}{2}", "1/2", "exact", "not_equal"),
    ("\\dfrac{1}{2}", "\\frac{1}{2}", "exact", "equal"),
])
def test_numeric_and_exact_modes(pred, gold, mode, reason):
    assert compare(pred, gold, mode=mode) == reason


@pytest.mark.parametrize("pred, reason", [
    ("", "unparsable"), ("x +", "unparsable"), ("(1, 2", "unparsable"), ("\\foo{1}", "unparsable"),
    ("2 3", "unparsable"), ("f''''(x)", "unparsable"), ("1..2", "unparsable"), ("x" * 3000, "too_large"),
])
def test_unreadable_predictions_are_verdicts(pred, reason):
    assert compare(pred, "x+1") == reason
