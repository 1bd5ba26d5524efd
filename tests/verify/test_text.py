"""Answer-checker II (issue 13): raw model text, extracted by the `auto` extractor, then graded.

Completions are written in the styles models use on MATH / NuminaMath prompts: a boxed answer,
several boxes, a `Final Answer:` line, an answer inside prose, a bare expression with no box,
and GSM8K-style text whose `$` are currency signs.
"""

import pytest

from mathrl.verify import extract, grade
from mathrl.verify.prose import free_text, is_prose, spans

# (completion, the answer `auto` extracts)
EXTRACTED = {
    "free_text": [
        ("\\frac{y}{5}+\\frac{3}{5}", "\\frac{y}{5}+\\frac{3}{5}"), ("x^2+1", "x^2+1"),
        ("(2, +\\infty)", "(2, +\\infty)"),
        ("-1 \\le x \\le 4", "-1 \\le x \\le 4"),
        ("$$\\begin{pmatrix}1\\\\2\\end{pmatrix}$$", "$$\\begin{pmatrix}1\\\\2\\end{pmatrix}$$"),
        ("2x = 4\nx = 2", "x = 2"), ("\\text{even}", "\\text{even}"), ("7.", "7"),
        # plain arithmetic answers with its last number, as before free text (GSM8K, lenient grades)
        ("7 + 2 = 9 + 1 = 10", "10"), ("3 + 4 = 7", "7"), ("$$8 + 12$$", "8 + 12"), ("69 = 4 + 10", "10"),
        ("29 + 47 ≈ 76", "76"), ("13 + 20 = x", "20"), ("y = 2x + 1", "y = 2x + 1"), ("2^{10} = 1024", "1024"),
    ],
    "prose": [
        ("The range is $[-1, 4]$.", "[-1, 4]"), ("We get \\(x=3\\).", "x=3"),
        ("Thus \\[\\frac{1}{2}\\]", "\\frac{1}{2}"),
        ("The probability is $\\frac{3}{8}$, so we are done.", "\\frac{3}{8}"),
        ("The solutions are $x=2$ and $x=3$.", "x=2, x=3"), ("so the roots are $-1$, $4$", "-1, 4"),
        ("Hence $k$ must be 7", "7"), ("The total is 2,500.75€.", "2,500.75"), ("In total 2.500,75 EUR", "2.500,75"),
        ("She earns $18 and spends $5 a day, so 13 remain", "13"), ("It costs \\$5 and $x$ is 3", "3"),
    ],
    "phrases": [
        ("Final Answer: the smallest $k$ is 7.", "7"), ("Answer $ 12 $", "12"),
        ("The answer is $\\frac{1}{2}$.", "$\\frac{1}{2}$"),
        ("The answer is (B).", "(B)"), ("The answer is \\textbf{(C)}", "\\textbf{(C)}"),
        ("Final Answer: The final answer is $3$. I hope it is correct.", "$3$"), ("The answer is 5 apples.", "5"),
    ],
    "boxes": [
        ("Thus $a = \\boxed{3}$ and $b = \\boxed{4}$.", "3, 4"), ("\\boxed{3}, \\boxed{4}", "3, 4"),
        ("$x = \\boxed{2}$ or $x = \\boxed{-5}$", "2, -5"), ("f(1) = \\boxed{2}, f(2) = \\boxed{3}", "2, 3"),
        ("\\boxed{5}\n\n\\boxed{5}", "5"), ("\\boxed{1} then \\boxed{2}", "2"), ("\\boxed{1}. Wait: \\boxed{2}", "2"),
        ("**Final Answer**\n\\[\\boxed{\\dfrac{1}{2}}\\]", "\\dfrac{1}{2}"), ("\\boxed{\\boxed{3}}", "3"),
    ],
}

# (completion, gold, correct)
GRADED = [
    ("\\frac{y}{5}+\\frac{3}{5}", "\\frac{y+3}{5}", True), ("\\frac{y}{5}+\\frac{3}{5}", "5", False),
    ("Thus $a = \\boxed{3}$ and $b = \\boxed{4}$.", "a = 3, b = 4", True), ("\\boxed{3}, \\boxed{4}", "(3, 4)", True),
    ("The solutions are $x=2$ and $x=3$.", "2, 3", True), ("The solutions are $x=2$ and $x=3$.", "3", False),
    ("Final Answer: the smallest $k$ is 7.", "7", True), ("Answer $ 12 $", "$12$", True),
    ("The range is $[-1, 4]$.", "-1 \\le x \\le 4", True), ("-1 \\le x \\le 4", "[-1, 4)", False),
    ("The total is 2,500.75€.", "2500.75", True), ("She earns $18 and spends $5 a day, so 13 remain", "13", True),
    ("The answer is \\textbf{(C)}", "\\text{(C)}", True), ("The answer is \\textbf{(C)}", "B", False),
    ("We find $f(x) = x^2 + 1$.", "1 + x^2", True), ("$$\\begin{pmatrix}1\\\\2\\end{pmatrix}$$", "(1,2)", True),
    ("The answer is $x \\in (2, +\\infty)$.", "\\boxed{(2,\\infty)}", True), ("Janet ... #### 18", "$18", True),
    ("The answer is even.", "\\text{even}", True), ("The answer is odd.", "\\text{even}", False),
    # Two boxes that restate one answer are that answer; two different boxes are a hedge, not it.
    ("$d = \\boxed{15\\frac{39}{40}},$ or $\\boxed{\\frac{639}{40}}$ inches.", "\\frac{639}{40}", True),
    ("It is $\\boxed{1}$ or $\\boxed{2}$.", "1", False), ("It is $\\boxed{1}$ or $\\boxed{2}$.", "2", False),
]


@pytest.mark.parametrize("completion, answer", [
    pytest.param(c, a, id=f"{cat}:{c[:40]}") for cat, rows in EXTRACTED.items() for c, a in rows])
def test_auto_extracts(completion, answer):
    assert extract(completion, "auto") == answer


@pytest.mark.parametrize("completion, gold, correct", GRADED)
def test_raw_text_is_graded(completion, gold, correct):
    assert grade(completion, gold).correct is correct


@pytest.mark.parametrize("text, prose", [
    ("x^2 + 1", False), ("\\frac{\\pi}{2}", False), ("\\text{even}", False), ("5\\text{ apples}", False),
    ("\\sqrt{2} \\cdot \\sin x", False), ("xy + 2", False), ("x is 5", True), ("the answer", True),
    ("\\begin{pmatrix} 1 \\end{pmatrix}", False), ("18 and spends ", True),
])
def test_prose_words(text, prose):
    assert is_prose(text) is prose


def test_currency_dollars_are_not_math_delimiters():
    assert spans("earns $18 and spends $5 a day") == []
    assert [inner for _, _, inner in spans("so $x$ is \\$5 and $y = 2$")] == ["x", "y = 2"]


def test_unclosed_delimiters_are_linear():
    # An opener without a closer is remembered, not searched for again (no quadratic scan).
    assert free_text("\\(" * 50_000 + " 7") == "7"
    assert free_text("$" * 100_001) is None
