"""Answer-checker II (issue 13): one table per category, already-extracted answers, math mode.

Rows are (pred, gold), written by hand from the answer conventions of MATH / MATH-500 golds
(`\\frac{3}{56}`, `\\text{(C)}`, `(-\\infty,-2)\\cup(2,\\infty)`, `\\$32,\\!348`) and of NuminaMath
solutions (`\\boxed{B}`, `(1,+\\infty)`, `\\{x|x>1\\}`, `a_n=2n-1`, `m \\geqslant 2`), and from the
ways models restate them. NOT_EQUAL rows are the near misses a lax checker would accept.
Raw completions (extraction, prose, several boxes) are in tests/verify/test_text.py.
"""

import pytest

from mathrl.verify import compare

EQUAL = {
    "delimiters": [
        ("$12$", "12"), ("$ 12 $", "12"), ("$$12$$", "12"), ("\\(12\\)", "12"), ("\\[12\\]", "12"),
        ("\\[ \\frac{1}{2} \\]", "0.5"), ("$\\boxed{\\dfrac{3}{56}}$", "\\frac{3}{56}"), ("\\boxed{12}", "$12$"),
        ("Answer $ 12 $", "12"), ("Final Answer: the smallest $k$ is 7.", "7"),
        ("The answer is $x = 5$.", "5"), ("$x \\in [-1, 4]$", "\\([-1,4]\\)"),
        ("The final answer is $\\boxed{\\text{(C)}}$. I hope it is correct.", "C"),
    ],
    "latex_spellings": [
        ("\\sqrt5", "\\sqrt{5}"), ("2\\sqrt3", "2\\sqrt{3}"), ("\\sqrt[3]5", "5^{1/3}"),
        ("y \\gt 3", "y > 3"), ("y \\gt 3", "(3, \\infty)"), ("x \\ge 2", "x \\geq 2"),
        ("x \\geqslant 2", "[2,+\\infty)"),
        ("x \\leq 2", "x \\le 2"), ("x \\leqslant 2", "(-\\infty, 2]"), ("x \\neq 1", "x \\ne 1"), ("a \\lt 0", "a<0"),
        ("\\dfrac{3}{56}", "\\frac{3}{56}"), ("\\tfrac{3}{56}", "3/56"), ("\\dfrac{\\sqrt3}{2}", "\\tfrac{\\sqrt{3}}2"),
        ("1\\!000", "1000"), ("10\\,000", "10000"), ("\\!\\frac{1}{2}", "\\frac12"), ("3\\,\\text{cm}", "3"),
        ("90^\\circ", "90"), ("90^{\\circ}", "90"), ("45\\%", "45"), ("45\\%", "45%"),
        ("\\text{even}", "even"), ("\\text{Even}", "\\textbf{even}"), ("\\textbf{C}", "C"), ("\\textbf{(C)}", "C"),
        ("\\text{C}", "(C)"), ("\\mathrm{(D)}", "D"), ("\\text{B}", "B"), ("\\text{no solution}", "No solution"),
        ("\\displaystyle\\frac{\\pi}{4}", "\\frac{\\pi}4"), ("\\left( 1, 2 \\right)", "(1,2)"),
        ("2α", "2\\alpha"), ("θ + 1", "1 + \\theta"), ("x \\approx 3.14", "3.14"), ("**7**", "7"),
        ("m\\angle B = 45^\\circ", "45"), ("\\overline{AB} = 5", "5"), ("\\tbinom{5}{2}", "\\dbinom52"),
        ("\\textbf{(B) } 7", "B"), ("(B) 7", "7"), ("(B) 7", "\\text{(B)}"),
    ],
    "mixed_numbers": [
        ("37\\frac{1}{4}", "37.25"), ("37\\frac14", "\\frac{149}{4}"), ("2\\frac{1}{3}", "7/3"),
        ("-\\frac{7}{3}", "-7/3"), ("-\\frac73", "\\frac{-7}{3}"), ("\\frac{-7}{3}", "-2\\frac{1}{3}"),
        ("-\\dfrac{7}{3}", "-2.\\overline{3}"), ("0.\\overline{3}", "\\frac13"), ("0.1\\overline{6}", "1/6"),
        ("1\\tfrac{1}{2}", "1.5"), ("3 \\frac{1}{2} \\text{ inches}", "3.5"),
    ],
    "relations": [
        ("y \\gt 3", "y>3"), ("f(x) = x^2 + 1", "1 + x^2"), ("f(x)=x^2+1", "f(x) = 1 + x^2"),
        ("g(t) = 2t - 1", "2t-1"), ("a_n = 2n - 1", "2n-1"), ("a_{n}=3^{n-1}", "3^{n-1}"), ("y = 2x + 1", "2x+1"),
        ("a = 3, b = 4", "3, 4"), ("a = 3, b = 4", "a=3, b=4"), ("x = 2, y = -1", "(2, -1)"),
        ("\\frac{x^2}{4} + \\frac{y^2}{3} = 1", "3x^2 + 4y^2 = 12"), ("x - 2y + 3 = 0", "2y = x + 3"),
        ("3 + 4 = 7", "7"), ("k = 7", "7"), ("m \\geqslant 2", "[2, +\\infty)"),
    ],
    "intervals_and_sets": [
        ("(2, +\\infty)", "(2,\\infty)"), ("[-1, 4]", "-1 \\le x \\le 4"), ("x \\in [-1,4]", "[-1, 4]"),
        ("-1 \\leq x \\leq 4", "x \\in [-1, 4]"), ("(-1, 2]", "-1 < x \\leq 2"), ("0 < a < 1", "(0,1)"),
        ("\\{0\\} \\cup [1, 5)", "[1,5) \\cup \\{0\\}"), ("(-\\infty,-2)\\cup(2,\\infty)", "x<-2 \\text{ or } x>2"),
        ("(-\\infty, -1) \\cup (3, +\\infty)", "(3,\\infty)\\cup(-\\infty,-1)"),
        ("x \\ne 1", "(-\\infty,1)\\cup(1,\\infty)"),
        ("\\{x \\mid x > 1\\}", "(1, +\\infty)"), ("\\{x|-1<x<2\\}", "(-1,2)"),
        ("\\{x \\in \\mathbb{R} \\mid x \\geq 0\\}", "[0,\\infty)"),
        ("\\mathbb{R}", "(-\\infty, \\infty)"), ("\\mathbb{R}", "\\text{all real numbers}"),
        ("\\{(1,2), (3,4)\\}", "\\{(3,4), (1,2)\\}"), ("(1,2), (3,4)", "(3,4), (1,2)"),
        ("\\{-2, 2\\}", "-2, 2"), ("\\{1,2,3\\}", "3, 2, 1"), ("\\emptyset", "\\varnothing"),
        ("\\left[ -\\dfrac{1}{2}, 1 \\right]", "[-0.5,1]"), ("\\{1, 2\\} \\cup \\{3\\}", "\\{3, 2, 1\\}"),
    ],
    "structures": [
        ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}"),
        ("\\begin{pmatrix} 1/2 \\\\ -3 \\end{pmatrix}", "\\begin{pmatrix} \\frac12 \\\\ -3 \\end{pmatrix}"),
        ("\\begin{pmatrix} 1 \\\\ 2 \\\\ 3 \\end{pmatrix}", "(1,2,3)"), ("\\langle 1, 2, 3 \\rangle", "(1,2,3)"),
        ("\\left\\langle 1,2\\right\\rangle", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
        ("\\mathbf{v} = \\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1, 2)"), ("\\vec{v} = (1,2)", "(1,2)"),
        ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"), ("(1, -2, 3)", "(1,-2,3)"),
        ("\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]",
         "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"),
    ],
    "number_formats": [
        ("2,500.75", "2500.75"), ("2 500", "2500"), ("2\\,500", "2500"), ("2{,}500", "2500"), ("2\\!500", "2500"),
        ("1,234,567", "1234567"), ("1.234.567", "1234567"), ("2.500,75", "2500.75"), ("3,5", "3.5"), ("3{,}5", "3.5"),
        ("0,25", "\\frac14"), ("2,500.75€", "2500.75"), ("€20", "20"), ("20 €", "20"), ("£4.50", "4.5"),
        ("\\$2,500", "2500"), ("\\$ 1.50", "1.5"), ("5 cm²", "5"), ("12\\text{ cm}^2", "12"), ("3\\mathrm{cm}", "3"),
        ("20 \\text{ dollars}", "20"), ("1.5\\text{ hours}", "1.5"), ("2\\sqrt{2}\\text{ cm}", "2\\sqrt2"),
        ("10\\text{ USD}", "10"), ("\\$32,\\!348", "32348"), ("11,\\!111", "11111"), ("50 percent", "50\\%"),
    ],
}

NOT_EQUAL = {
    "delimiters": [
        ("$12$", "13"), ("Answer $ 12 $", "1"), ("Final Answer: the smallest $k$ is 7.", "8"),
        ("$\\boxed{\\dfrac{3}{56}}$", "\\frac{3}{55}"), ("The answer is $x = 5$.", "6"),
    ],
    "latex_spellings": [
        ("\\sqrt5", "5"), ("\\sqrt5", "\\sqrt{6}"), ("y \\gt 3", "y \\ge 3"), ("x \\leq 2", "x < 2"),
        ("x \\neq 1", "x = 1"),
        ("\\dfrac{3}{56}", "\\frac{56}{3}"), ("90^\\circ", "91"), ("45\\%", "0.45"), ("\\text{even}", "odd"),
        ("\\textbf{C}", "D"), ("\\text{(C)}", "(B)"), ("(B) 7", "C"), ("(B) 7", "8"), ("\\text{(C)}+1", "C"),
        ("\\overline{AB} = 5", "6"),
    ],
    "mixed_numbers": [
        ("37\\frac{1}{4}", "37"), ("37\\frac{1}{4}", "\\frac{37}{4}"), ("-\\frac{7}{3}", "7/3"),
        ("2\\frac{1}{3}", "2/3"),
        ("0.\\overline{3}", "0.3"), ("0.\\overline{3}", "\\frac{3}{10}"),
    ],
    "relations": [
        ("y > 3", "y \\ge 3"), ("f(x) = x^2 + 1", "x^2 - 1"), ("f(x) = x^2 + 1", "x^2"), ("a = 3, b = 4", "3, 5"),
        ("\\frac{x^2}{4} + \\frac{y^2}{3} = 1", "3x^2 + 4y^2 = 13"),
        ("\\frac{x^2}{4} + \\frac{y^2}{3} = 1", "x^2/3 + y^2/4 = 1"),
        ("3 + 4 = 7", "8"), ("x + y = 1", "x + y = 2"),
    ],
    "intervals_and_sets": [
        ("(2, +\\infty)", "[2,\\infty)"), ("[-1, 4]", "-1 < x \\le 4"), ("x \\in [-1,4]", "[-1, 5]"),
        ("\\{0\\} \\cup [1, 5)", "[0, 5)"), ("\\{0\\} \\cup [1, 5)", "\\{0\\} \\cup [1, 5]"),
        ("x \\ne 1", "(-\\infty, 1)"),
        ("\\{x \\mid x > 1\\}", "[1,\\infty)"), ("\\{(1,2), (3,4)\\}", "\\{(2,1), (3,4)\\}"), ("\\{-2, 2\\}", "2"),
        ("(-\\infty,-2)\\cup(2,\\infty)", "(-2, 2)"), ("\\{1, 2\\} \\cup \\{3\\}", "\\{1, 2\\}"),
    ],
    "structures": [
        ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}"),
        ("\\begin{pmatrix} 1 \\\\ 2 \\\\ 3 \\end{pmatrix}", "(3,2,1)"), ("\\langle 1, 2 \\rangle", "(1, 2, 0)"),
        ("(1, -2, 3)", "(1, 2, 3)"), ("\\mathbf{v} = \\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(2, 1)"),
    ],
    "number_formats": [
        ("2,500.75", "2500.7"), ("1,000", "1.000"), ("1,000", "1"), ("2.500", "2500"), ("3,5", "35"), ("3,5", "3.6"),
        ("3,5", "3, 6"), ("2,500.75€", "2500"), ("5 cm²", "25"), ("\\$2,500", "250"), ("0,25", "25"),
    ],
}


def _rows(table):
    return [pytest.param(p, g, id=f"{cat}:{p}|{g}") for cat, rows in table.items() for p, g in rows]


@pytest.mark.parametrize("pred, gold", _rows(EQUAL))
def test_equal(pred, gold):
    assert compare(pred, gold) == "equal"
    assert compare(gold, pred) == "equal"  # gold answers may carry the same wrappers


@pytest.mark.parametrize("pred, gold", _rows(NOT_EQUAL))
def test_not_equal(pred, gold):
    assert compare(pred, gold) != "equal"
    assert compare(gold, pred) != "equal"


def test_every_category_has_both_tables():
    assert set(EQUAL) == set(NOT_EQUAL)
    assert all(len(EQUAL[c]) >= 5 and len(NOT_EQUAL[c]) >= 5 for c in EQUAL)
