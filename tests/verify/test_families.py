"""Answer-checker III (issue 25): raw model text vs gold, both as the grader receives them.

One table per family of the issue, written by hand from the answer conventions of MATH
(solutions ending in `\\boxed{}`, `\\text{even}`, `\\pmatrix` answers), NuminaMath and
OpenThoughts (labelled results `AB:CD = 3:7`, several boxes, `a=3, b=1; a=5, b=1`), GSM8K
(numbers with grouping, currency) and from what models write around them (chains
`x = 2+3 = 5`, `\\approx`, rounded decimals, noise tokens). Each row is (completion, gold,
correct); `False` rows are the near misses a lax checker would accept. Directional rows (a
chain or relation against a bare value) follow the choice documented in mathrl/verify/__init__.py.
"""

import json

import pytest

from mathrl.verify import grade, verify_jsonl

G_LINEAR = ("We have $2x + 3 = 11$. Subtracting $3$ from both sides gives $2x = 8$, so "
            "$x = \\boxed{4}$.")
G_PROB = ("There are $\\binom{6}{2} = 15$ pairs, and $5$ of them contain the red ball. So the "
          "probability is $\\frac{5}{15} = \\boxed{\\frac{1}{3}}$.")
G_INTERVAL = ("The expression under the root must be nonnegative, so $4 - x^2 \\ge 0$, that is "
              "$-2 \\le x \\le 2$. The domain is $\\boxed{[-2, 2]}$.")
G_MATRIX = ("Multiplying, we find $\\mathbf{M} = \\boxed{\\begin{pmatrix} 2 & 1 \\\\ 4 & 3 "
            "\\end{pmatrix}}$.")
G_LONG = "Step: we expand the product and collect like terms.\n" * 60 + "So $k = \\boxed{12}$."
P_LONG = "First we note the symmetry of the problem.\n" * 60 + "Hence the answer is $\\boxed{12}$."

FAMILIES = {
    "whole_solutions": [
        ("Subtract $3$: $2x = 8$, then divide: $x = 4$. The answer is $\\boxed{4}$.", G_LINEAR, True),
        ("Subtract $3$: $2x = 8$, so $x = \\boxed{5}$.", G_LINEAR, False),
        ("From $2x+3=11$ we get $2x=8$, so the answer is\n\n4", G_LINEAR, True),
        ("From $2x+3=11$ we get $2x=8$, so\n\n$$x = 4$$", G_LINEAR, True),
        ("From $2x+3=11$ we get $2x=8$, so\n\n$$x = 3$$", G_LINEAR, False),
        ("Count the pairs: $15$ in all, $5$ with red, so $P = \\boxed{\\dfrac{1}{3}}$.", G_PROB, True),
        ("Count the pairs: $15$ in all, $5$ with red.\n\n\\frac{5}{15}", G_PROB, True),
        ("Count the pairs: $15$ in all, $6$ with red.\n\n\\frac{6}{15}", G_PROB, False),
        ("We need $x^2 \\le 4$, so the domain is $\\boxed{-2 \\le x \\le 2}$.", G_INTERVAL, True),
        ("We need $x^2 \\le 4$, so the domain is $\\boxed{(-2, 2)}$.", G_INTERVAL, False),
        ("So the domain is\n\n[-2, 2]", G_INTERVAL, True),
        ("The product is $\\boxed{\\begin{bmatrix} 2 & 1 \\\\ 4 & 3 \\end{bmatrix}}$.", G_MATRIX, True),
        ("The product is $\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}$.", G_MATRIX, False),
        (P_LONG, G_LONG, True),
        (P_LONG.replace("{12}", "{13}"), G_LONG, False),
        ("Final Answer: The final answer is $\\frac{1}{3}$. I hope it is correct.", G_PROB, True),
        (G_LINEAR, G_LINEAR, True),
    ],
    "relation_chains": [
        ("$x = 2+3 = 5$", "5", True),
        ("$x = 2+3 = 5$", "6", False),
        ("So $n = 4 \\cdot 6 - 4 = 20$.", "20", True),
        ("$y = \\frac{1}{2} \\approx 0.5$", "\\frac12", True),
        ("$y = \\frac{1}{3} \\approx 0.33$", "\\frac{1}{3}", True),
        ("$\\frac{\\sqrt2}{2} \\approx 0.707$", "\\frac{\\sqrt{2}}{2}", True),
        ("$\\frac{\\sqrt{2}}{2}$", "\\frac{\\sqrt2}{2} \\approx 0.707", True),
        ("$\\frac{\\sqrt2}{2} \\approx 0.707$", "\\frac{\\sqrt{3}}{2}", False),
        ("$-y > -2$", "y < 2", True),
        ("$y < 2$", "-y > -2", True),
        ("$-y > -2$", "y > 2", False),
        ("$-3 < -t \\le 1$", "t \\in [-1, 3)", True),
        ("$-2x \\le 6$", "x \\ge -3", False),  # solving is not flipping: an echoed question
        ("$3 - t < 1$", "t > 2", False),  # inequality must not earn the range it asks for
        ("$t \\in [-1,4]$", "-1 \\le t \\le 4", True),
        ("$-1 \\le t \\le 4$", "t \\in [-1, 4]", True),
        ("$-1 < t \\le 4$", "t \\in [-1, 4]", False),
        ("$a + 2z = 2z + a = 101$", "101", True),
        ("$101$", "a + 2z = 2z + a = 101", False),  # a gold chain: the asymmetry in verify/__init__.py
        ("$x > 2$", "2", False),
        ("$2$", "x > 2", False),
        ("$x = 3 + 4 = 7$", "x = 7", True),
    ],
    "several_parts": [
        ("The roots are $\\boxed{2}$ and $\\boxed{3}$.", "\\{2, 3\\}", True),
        ("The roots are $\\boxed{3}$ and $\\boxed{2}$.", "\\{2, 3\\}", True),
        ("$\\boxed{2}$, $\\boxed{3}$", "(2, 3)", True),
        ("$\\boxed{3}$, $\\boxed{2}$", "(2, 3)", False),
        ("\\boxed{2}, \\boxed{3}", "2, 3", True),
        ("The solutions are $x = 1$ and $x = -4$.", "-4, 1", True),
        ("The solutions are $1; -4$.", "1, -4", True),
        ("$x = 1; x = -4$", "\\{-4, 1\\}", True),
        ("$1; -4$", "1, 4", False),
        ("$\\{(1,2), (3,4)\\}$", "\\{(3,4), (1,2)\\}", True),
        ("$(3, 4), (1, 2)$", "(1,2),(3,4)", True),
        ("$(2, 1), (3, 4)$", "(1,2),(3,4)", False),
        ("$a=3, b=1; a=5, b=1$", "(3,1),(5,1)", True),
        ("$a=5, b=1; a=3, b=1$", "(3,1),(5,1)", True),
        ("$a=3, b=1; a=1, b=5$", "(3,1),(5,1)", False),
        ("$\\pm 4$", "\\{-4, 4\\}", True),
        ("$x = \\pm 4$", "-4, 4", True),
        ("$\\pm 4$", "4", False),
        ("The answer is $2$ and $7$.", "7, 2", True),
    ],
    "labelled_answers": [
        ("$AB:CD = 3:7$", "3:7", True),
        ("$AB : CD = 3:7$", "7:3", False),
        ("$AB:BC = 2:3$", "4:6", True),
        ("$|PQ| = 4$", "4", True),
        ("$|PQ| = 4$", "5", False),
        ("$V_1 : V_2 = 2:5$", "2:5", True),
        ("$V_1:V_2 = 2:5$", "\\frac{2}{5}", True),
        ("$AB = 5\\sqrt{2}$", "5\\sqrt2", True),
        ("$\\overline{BC} = 12$", "12", True),
        ("$m\\angle ABC = 30^\\circ$", "30", True),
        ("$S_{ABC} = 24$", "24", True),
        ("$P(A) = \\frac{1}{6}$", "\\frac16", True),
        ("$|\\vec{v}| = 5$", "5", True),
        ("$\\text{Area} = 12$", "12", True),
        ("$2x = 8$", "8", False),
        ("$x + y = 5$", "5", False),
        ("$XY = 7$", "8", False),
        ("The ratio is $3:7$.", "AB:CD = 3:7", True),
    ],
    "structure_expressions": [
        ("$\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}+\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}$",
         "\\begin{pmatrix}2&2\\\\3&5\\end{pmatrix}", True),
        ("$\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}+\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}$",
         "\\begin{pmatrix}2&2\\\\3&4\\end{pmatrix}", False),
        ("$2\\begin{pmatrix}1\\\\-3\\end{pmatrix}$", "\\begin{pmatrix}2\\\\-6\\end{pmatrix}", True),
        ("$2\\begin{pmatrix}1\\\\-3\\end{pmatrix}$", "(2,-6)", True),
        ("$2\\begin{pmatrix}1\\\\-3\\end{pmatrix}$", "(2,6)", False),
        ("$\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}\\begin{pmatrix}0&1\\\\1&0\\end{pmatrix}$",
         "\\begin{pmatrix}2&1\\\\4&3\\end{pmatrix}", True),
        ("$\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix} \\cdot \\begin{pmatrix}0&1\\\\1&0\\end{pmatrix}$",
         "\\begin{pmatrix}3&4\\\\1&2\\end{pmatrix}", False),
        ("$\\begin{pmatrix}1\\\\2\\end{pmatrix} - \\begin{pmatrix}3\\\\5\\end{pmatrix}$",
         "\\begin{pmatrix}-2\\\\-3\\end{pmatrix}", True),
        ("$-\\begin{pmatrix}1&-1\\end{pmatrix}$", "\\begin{pmatrix}-1&1\\end{pmatrix}", True),
        ("$\\frac{1}{2}\\begin{pmatrix}2&4\\\\6&8\\end{pmatrix}$", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True),
        ("$\\begin{pmatrix}2&4\\end{pmatrix}/2$", "\\begin{pmatrix}1&2\\end{pmatrix}", True),
        ("$\\begin{pmatrix}1&2\\end{pmatrix}\\begin{pmatrix}3\\\\4\\end{pmatrix}$", "11", True),
        ("$\\begin{pmatrix}a&0\\\\0&b\\end{pmatrix}\\begin{pmatrix}1\\\\1\\end{pmatrix}$",
         "\\begin{pmatrix}a\\\\b\\end{pmatrix}", True),
        ("$3\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix} - \\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}$",
         "\\begin{pmatrix}2&0\\\\0&2\\end{pmatrix}", True),
        ("$\\begin{pmatrix}1&2\\end{pmatrix} + \\begin{pmatrix}1\\\\2\\end{pmatrix}$",
         "\\begin{pmatrix}2&4\\end{pmatrix}", False),
        ("$\\mathbf{v} = 2\\begin{pmatrix}1\\\\1\\end{pmatrix}$", "(2,2)", True),
        ("$\\begin{pmatrix}1&1\\\\0&1\\end{pmatrix}^2$", "\\begin{pmatrix}1&2\\\\0&1\\end{pmatrix}", True),
        ("$\\begin{pmatrix}1&1\\\\0&1\\end{pmatrix}^2$", "\\begin{pmatrix}1&1\\\\0&1\\end{pmatrix}", False),
    ],
    "rounded_structures": [
        ("$(0.4, 1.6667]$", "(\\frac25, \\frac53]", True),
        ("$(0.4, 1.6667)$", "(\\frac25, \\frac53]", False),
        ("$(0.4, 1.6666]$", "(\\frac25, \\frac53]", False),
        ("$(0.3333, 0.6667)$", "(\\frac13, \\frac23)", True),
        ("$(0.333, 0.667)$", "(\\frac13, \\frac23)", False),
        ("$\\begin{pmatrix}0.7071\\\\0.7071\\end{pmatrix}$",
         "\\begin{pmatrix}\\frac{\\sqrt2}{2}\\\\\\frac{\\sqrt2}{2}\\end{pmatrix}", True),
        ("$\\begin{pmatrix}0.7071\\\\0.7072\\end{pmatrix}$",
         "\\begin{pmatrix}\\frac{\\sqrt2}{2}\\\\\\frac{\\sqrt2}{2}\\end{pmatrix}", False),
        ("$(1.414, 1.732)$", "(\\sqrt2, \\sqrt3)", True),
        ("$(1.41, 1.73)$", "(\\sqrt2, \\sqrt3)", False),
        ("$(1.4, 1.7)$", "(\\sqrt2, \\sqrt3)", False),
        ("$\\{0.5, 0.3333\\}$", "\\{\\frac12, \\frac13\\}", True),
        ("$\\begin{pmatrix}0.25 & 0.3333\\\\ 1 & 0\\end{pmatrix}$",
         "\\begin{pmatrix}\\frac14&\\frac13\\\\1&0\\end{pmatrix}", True),
        ("$[-0.6667, 2.5]$", "[-\\frac23, \\frac52]", True),
        ("$(3.1416, 2.7183)$", "(\\pi, e)", True),
        ("$(3.1416, 2.7183)$", "(\\pi, 2e)", False),
        ("$(0.1667, 0.8333)$", "(\\frac16, \\frac56)", True),
        ("$(0.1667, 0.8334)$", "(\\frac16, \\frac56)", False),
        ("$1.6667$", "\\frac53", True),
        ("$0.3$", "\\frac13", False),
    ],
    "number_formats": [
        ("$\\boxed{4 500}$", "4500", True),
        ("The population is $4\\,500$.", "4500", True),
        ("Answer: 4 500", "4500", True),
        ("$\\boxed{4 500}$", "450", False),
        ("$0.25$", "0,25", True),
        ("\\boxed{0.25}", "0{,}25", True),
        ("$0.26$", "0,25", False),
        ("\\boxed{3.5}", "3,5", True),
        ("$\\boxed{12,\\!34,\\!567}$", "1234567", True),
        ("\\boxed{12,34,567}", "1234567", True),
        ("\\boxed{1,23,456}", "123456", True),
        ("\\boxed{12,34,567}", "1234568", False),
        ("Der Gesamtpreis beträgt 45 €.", "45", True),
        ("El precio total es de 120 €.", "120", True),
        ("Le prix total est de 12,50 €.", "12.5", True),
        ("Итого: 350 ₽", "350", True),
        ("Die Antwort ist 45 €.", "46", False),
        ("合計は 1500 円です。", "1500", True),
    ],
    "wrapped_text": [
        ("$\\text{even}$", "even", True),
        ("\\boxed{\\text{even}}", "\\text{even}", True),
        ("\\boxed{\\text{odd}}", "even", False),
        ("$\\mathcal{C}$", "C", True),
        ("$\\mathrm{C}$", "C", True),
        ("\\boxed{\\mathcal{C}}", "D", False),
        ("\\boxed{\\textbf{(B)}}", "B", True),
        ("\\boxed{\\mathbf{B}}", "B", True),
        ("\\boxed{\\mathscr{A}}", "A", True),
        ("\\boxed{\\texttt{yes}}", "yes", True),
        ("\\boxed{\\textsf{No}}", "no", True),
        ("f'", "f'", True),
        ("$f'$", "f'", True),
        ("$f'$", "f", False),
        ("$f''$", "f'", False),
        ("y'", "y'", True),
        ("\\boxed{\\text{Tuesday}}", "Tuesday", True),
        ("\\boxed{\\text{Monday}}", "Tuesday", False),
    ],
    "noise": [
        ("QX7ZT", "7", False),
        ("The code QX7ZT was shown.", "7", False),
        ("\\boxed{QX7ZT}", "7", False),
        ("Answer: QX7ZT", "7", False),
        ("Model ABC123X", "123", False),
        ("abc5def", "5", False),
        ("x7y", "7", False),
        ("H2O2", "2", False),
        ("ERR_CODE_E404X", "404", False),
        ("Using the ID QX7ZT, we get $\\boxed{5}$.", "5", True),
        ("QX7ZT aside, the answer is 12.", "12", True),
        ("Token A1B2C3; the answer is 8", "8", True),
        ("\\boxed{7} asdf QX9ZT", "7", True),
        ("The answer is 7. [ref: QX9ZT]", "7", True),
        ("ID: AB12CD, value 12", "12", True),
        ("Case K9L: total 30 apples", "30", True),
    ],
}


def _rows():
    return [pytest.param(c, g, ok, id=f"{family}:{i}") for family, rows in FAMILIES.items()
            for i, (c, g, ok) in enumerate(rows)]


@pytest.mark.parametrize("completion, gold, correct", _rows())
def test_family_row(completion, gold, correct):
    assert grade(completion, gold).correct is correct


def test_every_family_has_fifteen_rows_of_both_kinds():
    assert len(FAMILIES) == 9
    for family, rows in FAMILIES.items():
        assert len(rows) >= 15, family
        assert {ok for _, _, ok in rows} == {True, False}, family


def test_verify_input_grades_every_family(tmp_path):
    # `mathrl verify --input`: raw completions in the `completion` field, golds as written.
    rows = [{"completion": c, "gold": g, "expected": ok} for rows in FAMILIES.values() for c, g, ok in rows]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    graded = verify_jsonl(path)["rows"]
    assert [r["equal"] for r in graded] == [r["expected"] for r in rows]
