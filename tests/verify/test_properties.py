"""Property tests: random rationals and expressions, rewritten in equivalent forms, are equal;
perturbed ones are not; and no input at all makes the checker raise."""

from fractions import Fraction

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mathrl.verify import REASONS, compare, grade

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ints = st.integers(min_value=-10**6, max_value=10**6)
positive = st.integers(min_value=1, max_value=10**4)
small = st.integers(min_value=-9, max_value=9)


def _latex_fraction(f: Fraction) -> str:
    sign = "-" if f < 0 else ""
    return f"{sign}\\frac{{{abs(f.numerator)}}}{{{f.denominator}}}"


def _forms(f: Fraction, scale: int) -> list[str]:
    """Equivalent spellings of one rational."""
    forms = [_latex_fraction(f), f"{f.numerator}/{f.denominator}",
             f"{f.numerator * scale}/{f.denominator * scale}", f"\\dfrac{{{f.numerator}}}{{{f.denominator}}}"]
    if f.denominator == 1:
        forms += [f"{f.numerator:,}", f"{f.numerator}.0", f"\\boxed{{{f.numerator}}}"]
    d = f.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:  # terminating decimal: exact
        forms.append(format(f.numerator / f.denominator, ".12f").rstrip("0").rstrip("."))
    if f > 1 and f.denominator > 1:  # mixed number
        whole, rest = divmod(f.numerator, f.denominator)
        forms.append(f"{whole}\\frac{{{rest}}}{{{f.denominator}}}")
    return forms


@FAST
@given(ints, positive, st.integers(min_value=2, max_value=7), st.data())
def test_rational_rewrites_are_equal(p, q, scale, data):
    f = Fraction(p, q)
    forms = _forms(f, scale)
    a, b = data.draw(st.sampled_from(forms)), data.draw(st.sampled_from(forms))
    assert compare(a, b) == "equal", (a, b)
    assert compare(a, b, mode="numeric") == "equal", (a, b)


@FAST
@given(ints, positive, st.sampled_from([1, -1]), st.data())
def test_perturbed_rationals_are_not_equal(p, q, delta, data):
    f = Fraction(p, q)
    g = f * Fraction(1000 + delta, 1000) + Fraction(delta, q * 7 + 1)  # off by >= 1e-3 relative
    assume(g != f)
    a = data.draw(st.sampled_from(_forms(f, 3)))
    b = data.draw(st.sampled_from(_forms(g, 3)))
    assert compare(a, b) == "not_equal", (a, b)


@FAST
@given(st.integers(min_value=1000, max_value=10**12))
def test_thousands_separators(n):
    assert compare(f"{n:,}", str(n), mode="numeric") == "equal"
    assert grade(f"so the total is ${n:,}.\n#### {n:,}", str(n)).correct


# ---- expressions ---------------------------------------------------------------------------

def _poly(coeffs: list[int], var: str = "x") -> str:
    terms = [f"{c}{var}^{{{k}}}" for k, c in enumerate(coeffs) if c]
    return " + ".join(terms) or "0"


@FAST
@given(small, small, small, st.sampled_from(["x", "y", "t", "\\theta"]))
def test_factored_and_expanded_quadratics_are_equal(a, b, c, var):
    # c (v + a)(v + b) == c v^2 + c(a+b) v + c ab, in LaTeX and in plain text.
    factored = f"{c}({var}+{a})({var}+{b})".replace("+-", "-")
    expanded = f"{c}{var}^2 + {c * (a + b)}{var} + {c * a * b}".replace("+ -", "- ")
    plain = f"{c}*{var}**2 + ({c * (a + b)})*{var} + ({c * a * b})"
    assert compare(factored, expanded) == "equal", (factored, expanded)
    assert compare(plain, factored) == "equal", (plain, factored)


@FAST
@given(small, small, small, st.sampled_from([-1, 1]))
def test_perturbed_quadratics_are_not_equal(a, b, c, delta):
    expanded = f"{c}x^2 + {c * (a + b)}x + {c * a * b}"
    wrong = f"{c}x^2 + {c * (a + b)}x + {c * a * b + delta}"
    assert compare(expanded, wrong) == "not_equal"


@FAST
@given(st.integers(min_value=2, max_value=50).filter(lambda n: int(n**0.5) ** 2 != n),
       st.integers(min_value=1, max_value=9), st.integers(min_value=1, max_value=9))
def test_radical_rewrites(n, k, m):
    # k sqrt(n) / m == sqrt(k^2 n) / m == k sqrt(n) * m / m^2; and != (k+1) sqrt(n) / m
    assert compare(f"\\frac{{{k}\\sqrt{{{n}}}}}{{{m}}}", f"\\frac{{\\sqrt{{{k * k * n}}}}}{{{m}}}") == "equal"
    assert compare(f"{k}\\sqrt{{{n}}}/{m}", f"\\frac{{{k * m}\\sqrt{{{n}}}}}{{{m * m}}}") == "equal"
    assert compare(f"{k}\\sqrt{{{n}}}/{m}", f"{k + 1}\\sqrt{{{n}}}/{m}") == "not_equal"


@FAST
@given(st.lists(st.integers(min_value=-20, max_value=20), min_size=2, max_size=5, unique=True),
       st.randoms(use_true_random=False))
def test_solution_sets_are_unordered_tuples_are_not(values, rng):
    shuffled = values[:]
    rng.shuffle(shuffled)
    assert compare(", ".join(map(str, values)), ", ".join(map(str, shuffled))) == "equal"
    assert compare("\\{" + ",".join(map(str, values)) + "\\}", ", ".join(map(str, shuffled))) == "equal"
    if shuffled != values:
        assert compare("(" + ",".join(map(str, values)) + ")", "(" + ",".join(map(str, shuffled)) + ")") == "not_equal"


# ---- robustness: any text is a verdict -------------------------------------------------------

_PIECES = ["0", "1", "2", "9", "x", "y", "e", "i", "+", "-", "*", "/", "^", "(", ")", "[", "]",
           "{", "}", "\\{", "\\}", ",", ".", "=", "<", "!", "|", "_", " ", "\\frac", "\\sqrt",
           "\\pi", "\\pm", "\\cdot", "\\infty", "\\cup", "\\left(", "\\right)", "\\text{", "%",
           "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", "\\sin", "\\log_", "\\binom", "\\$"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=25).map("".join),
       st.sampled_from(["x+1", "\\frac{1}{2}", "(1,2)", "3"]))
def test_any_token_soup_is_a_verdict(pred, gold):
    assert compare(pred, gold, timeout=1.0) in REASONS


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_any_unicode_text_is_a_verdict(text):
    assert compare(text, "x^2", timeout=1.0) in REASONS
    g = grade(text, "2", timeout=1.0)
    assert g.reason in REASONS
