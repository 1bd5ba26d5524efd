"""The checker's default tolerance, pinned at every entry point a caller can reach.

A rounded decimal matches within rel_tol = 1e-6 by default. Loosened to 1e-2 it would accept
0.33 for 1/3, 3.14 for pi and, on GSM8K, `#### 99.5` for 100: a reward-hacking hole. Each
entry point (grade, grade_batch, compare, equivalent, Options, a task's spec default, GSM8K)
has its own default, so each is pinned here from both sides: 1e-7 apart is equal, 1e-5 is not.
"""

import pytest

from mathrl.tasks import builtin_tasks_dir, get_task
from mathrl.verify import compare, equivalent, grade, grade_batch
from mathrl.verify.modes import MODES, Options

# (pred, gold, equal under the default): relative gaps of 1e-7 (inside), 1e-5 and 1% (outside)
NUMBERS = [("1.0000001", "1", True), ("1.00001", "1", False), ("0.33", "1/3", False), ("99.5", "100", False)]
# the same through the numeric probe of math mode: |3.14159 - pi| / pi = 8.4e-7, 3.1415: 2.9e-5
# (3.1416 would be equal: pi rounds to it, and 5 significant digits stand for an exact value)
SYMBOLIC = [("3.14159", "\\pi", True), ("3.1415", "\\pi", False), ("3.14", "\\pi", False)]


@pytest.mark.parametrize("pred, gold, equal", NUMBERS + SYMBOLIC)
def test_compare_and_equivalent_default_to_one_part_in_a_million(pred, gold, equal):
    assert equivalent(pred, gold) is equal
    assert compare(pred, gold) == ("equal" if equal else "not_equal")
    assert MODES["math"](pred, gold, Options()) == ("equal" if equal else "not_equal")


@pytest.mark.parametrize("pred, gold, equal", NUMBERS)
def test_numeric_mode_defaults_to_one_part_in_a_million(pred, gold, equal):
    assert equivalent(pred, gold, mode="numeric") is equal
    assert MODES["numeric"](pred, gold, Options()) == ("equal" if equal else "not_equal")


@pytest.mark.parametrize("pred, gold, equal", NUMBERS + SYMBOLIC)
def test_grade_and_grade_batch_default_to_one_part_in_a_million(pred, gold, equal):
    completion = f"The answer is {pred}"
    assert grade(completion, gold).correct is equal
    assert grade(completion, gold, extractor="answer_is", mode="math").correct is equal
    assert [g.correct for g in grade_batch([completion, "The answer is 2"], [gold, "2"])] == [equal, True]


def test_the_looser_tolerance_these_tests_rule_out_would_pass_them():
    """The rows above are near misses: 1e-2 accepts every one, so they can catch a loosened default."""
    assert all(equivalent(p, g, rel_tol=1e-2) for p, g, _ in NUMBERS + SYMBOLIC)
    assert grade("The answer is 0.33", "1/3", rel_tol=1e-2).correct


def test_a_tasks_grader_defaults_to_one_part_in_a_million():
    assert "rel_tol" not in (builtin_tasks_dir() / "math500.yaml").read_text()  # the spec's default applies
    task = get_task("math500")
    assert not task.grade_answer("\\boxed{0.33}", "\\frac{1}{3}").correct
    assert not task.grade_answer("\\boxed{3.14}", "\\pi").correct
    assert task.grade_answer("\\boxed{1.0000001}", "1").correct
    loose = get_task("math500", overrides={"grader": {"rel_tol": 1e-2}})
    assert loose.grade_answer("\\boxed{0.33}", "\\frac{1}{3}").correct  # the override reaches the grader


def test_gsm8k_pays_nothing_for_an_answer_half_a_unit_off():
    task = get_task("gsm8k")
    assert not task.grade_answer("So 99.5 in all.\n#### 99.5", "100").correct
    assert not task.grade_answer("#### 100.01", "100").correct
    assert task.grade_answer("#### 100.00", "100").correct
    assert get_task("gsm8k", overrides={"grader": {"rel_tol": 1e-2}}).grade_answer("#### 99.5", "100").correct


def test_every_entry_point_hands_its_defaults_and_options_to_the_mode(monkeypatch):
    """The Options each public entry point builds: 1e-6, 2 s of SymPy, a percent is not a
    fraction; and each option given is passed on (not dropped, not moved to another slot)."""
    seen = []
    monkeypatch.setitem(MODES, "spy", lambda pred, gold, options: seen.append(options) or "equal")
    default = Options(rel_tol=1e-6, timeout=2.0, percent_as_fraction=False)
    given = Options(rel_tol=0.25, timeout=7.0, percent_as_fraction=True)
    assert grade("The answer is 5", "5", mode="spy").correct
    assert grade_batch(["The answer is 5"], ["5"], mode="spy")[0].correct
    assert compare("5", "5 ", mode="spy") == "equal" and equivalent("5", "5 ", mode="spy")
    assert seen == [default] * 4
    seen.clear()
    grade("The answer is 5", "5", "auto", "spy", 0.25, 7.0, True)
    grade_batch(["The answer is 5"], ["5"], "auto", "spy", 0.25, 7.0, True)
    compare("5", "5 ", "spy", 0.25, 7.0, True)
    equivalent("5", "5 ", "spy", 0.25, 7.0, True)
    assert seen == [given] * 4


def test_a_percent_is_not_a_fraction_unless_asked():
    """50% == 50 always; 50% == 0.5 only with percent_as_fraction, at every entry point."""
    assert grade("The answer is 50%", "0.5").correct is False
    assert grade("The answer is 50%", "0.5", percent_as_fraction=True).correct is True
    assert [g.correct for g in grade_batch(["The answer is 50%"] * 2, ["0.5", "50"])] == [False, True]
    assert grade_batch(["The answer is 50%"], ["0.5"], percent_as_fraction=True)[0].correct is True
    assert equivalent("50%", "0.5") is False and equivalent("50%", "0.5", percent_as_fraction=True) is True
    assert compare("50%", "0.5") == "not_equal" and compare("50%", "0.5", percent_as_fraction=True) == "equal"


def test_unknown_names_say_what_they_name():
    with pytest.raises(ValueError, match=r"unknown extractor 'nope'; choose from \["):
        grade("5", "5", extractor="nope")
    with pytest.raises(ValueError, match=r"unknown mode 'nope'; choose from \["):
        grade_batch(["5"], ["5"], mode="nope")
    with pytest.raises(ValueError, match="unknown mode 'nope'"):
        compare("5", "5", mode="nope")
