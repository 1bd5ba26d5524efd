"""Extractors: each named rule on the completions it exists for, and the traps around them."""

import pytest

from mathrl.verify import EXTRACTORS, extract, grade

CASES = {
    "gsm8k": [
        ("She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18", "18"),
        ("#### 18 dollars a day.", "18"),  # text after the number is fine
        ("#### 1,000", "1000"), ("####  $70,000.", "70000"), ("#### -3.5", "-3.5"), ("#### .5", ".5"),
        ("First #### 5, no wait.\n#### 6", "6"),  # the last marker wins (the reference takes the first)
        ("##### 7", "7"), ("#### x", None), ("no marker 42", None), ("#### ", None),
    ],
    "boxed": [
        ("so \\boxed{5}.", "5"), ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{2}", "2"), ("\\fbox{7}", "7"), ("\\boxed 5", "5"),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"), ("\\boxed{\\left( 3, \\frac{\\pi}{2} "
                                              "\\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("\\boxed{3} and a truncated \\boxed{\\frac{1", "3"), ("\\boxed{}", None), ("no box", None),
        ("$\\boxed{x^{2}}$", "x^{2}"), ("\\boxed{\\text{(C)}}", "\\text{(C)}"),
    ],
    "answer_is": [
        ("Thus the answer is 42.", "42"), ("The answer is $\\frac{1}{2}$.", "$\\frac{1}{2}$"),
        ("The final answer is $\\boxed{3}$. I hope", "3"), ("the answer is: 3.5.", "3.5"),
        ("The answer is 5. Wait, the answer is 6.", "6"), ("ANSWER IS 7", "7"), ("The answer is\n", None),
        ("no phrase 8", None),
    ],
    "answer_colon": [
        ("Work...\nAnswer: 42", "42"), ("Q: 1+1?\nA: 2", "2"), ("**Answer:** 12", "12"),
        ("Final Answer: $\\boxed{9}$", "9"), ("Answer: 3\nAnswer: 4.", "4"), ("Answer:", None),
        ("The Answer: is inline", None), ("nothing", None),
    ],
    "last_number": [
        ("I think 5 apples and 7 pears", "7"), ("total 1,234 items", "1234"), ("it is -3", "-3"),
        ("ages 10-15", "15"), ("value .5", ".5"), ("3/4 of it", "3/4"), ("pi is 3.14.", "3.14"),
        ("none", None), ("x" * 10_000 + " 12 " + "y" * 10_000, "12"),
    ],
    "auto": [
        ("#### 18\nbut \\boxed{19}", "19"),  # boxed first
        ("Janet ... #### 18", "18"), ("The answer is 7.", "7"), ("Answer: 3", "3"),
        ("so about 12 eggs", "12"), ("nothing here", None),
        ("The answer is 5 #### 6", "6"),  # #### beats the phrase
    ],
}


@pytest.mark.parametrize("extractor, completion, expected",
                         [(e, c, x) for e, rows in CASES.items() for c, x in rows])
def test_extractors(extractor, completion, expected):
    assert EXTRACTORS[extractor](completion) == expected
    assert extract(completion, extractor) == expected


def test_registry_names():
    assert set(EXTRACTORS) == {"gsm8k", "boxed", "answer_is", "answer_colon", "free_text", "last_number", "auto"}


def test_unknown_extractor_is_an_error():
    with pytest.raises(ValueError, match="unknown extractor"):
        extract("#### 5", "nope")


def test_answer_at_the_end_of_a_long_completion_is_found():
    # No truncation: a final answer after 1 MB of reasoning still counts.
    text = "step. " * 200_000 + "\n#### 42"
    assert grade(text, "42", extractor="auto").correct
    assert grade("\\boxed{1}" + "x" * 1_000_000 + "\\boxed{2}", "2", extractor="boxed").correct


@pytest.mark.parametrize("completion, gold, correct, reason", [
    ("She sells 16-3-4=9 eggs.\n#### 18", "18", True, "equal"),
    ("#### 18 dollars", "18", True, "equal"),
    ("no answer at all", "18", False, "no_answer"),
    ("The answer is \\boxed{\\dfrac{1}{2}}.", "0.5", True, "equal"),
    ("\\boxed{x+}", "x+1", False, "unparsable"),
])
def test_grade_end_to_end(completion, gold, correct, reason):
    g = grade(completion, gold)
    assert (g.correct, g.reason) == (correct, reason)
    assert g.extracted is None if reason == "no_answer" else g.extracted is not None


def test_the_answer_line_ends_at_the_first_newline_and_sheds_bold_marks():
    from mathrl.verify.extract import answer_is

    assert answer_is("The answer is 7\nThen more\nand more") == "7"
    assert answer_is("The answer is 7\n\\boxed{9}\nmore") == "7"  # a box on a later line is not this answer
    assert answer_is("The answer is **7**.") == "7" and answer_is("The answer is X.") == "X"
    assert answer_is("The answer is $3$ or $7$.") == "3, 7"  # two math items: the math, not the prose


def test_boxes_are_scanned_from_the_last_one_back():
    """Every \\boxed and \\fbox, last first: a truncated last box gives the one before it, not
    the first; a box at the very start counts; an unclosed earlier box stops the scan."""
    from mathrl.verify.extract import boxed

    assert boxed("\\fbox{1} then \\fbox{2}") == "2"
    assert boxed("\\boxed{1} x \\boxed{2} y \\boxed{3") == "2"
    assert boxed("\\fbox{1} x \\fbox{2} y \\fbox{3") == "2"
    assert boxed("\\fbox{1} y \\fbox{2") == "1"
    assert boxed("\\boxed{ oops \\boxed{2}") == "2"


def test_boxes_join_across_at_most_80_characters_and_16_boxes():
    from mathrl.verify.extract import boxed

    assert boxed("\\boxed{1}" + " " * 80 + "\\boxed{2}") == "1, 2"
    assert boxed("\\boxed{1}" + " " * 81 + "\\boxed{2}") == "2"
    sixteen = ", ".join(f"\\boxed{{{i}}}" for i in range(16))
    assert boxed(sixteen) == ", ".join(str(i) for i in range(16))
    assert boxed("\\boxed{99}, " + sixteen) == ", ".join(str(i) for i in range(16))  # the 17th is left out


def test_extract_defaults_to_auto():
    assert extract("so \\boxed{5}.") == extract("so \\boxed{5}.", "auto") == "5"


def test_last_number_reads_a_number_that_straddles_the_tail():
    """The last 4096 characters are searched first; a number cut by that window is read whole."""
    from mathrl.verify.extract import last_number

    straddling = "a" * 5000 + " 12 " + "b" * 4094  # the last 4096 characters start at the 2
    assert straddling[-4096:].startswith("2 ") and last_number(straddling) == "12"
    assert last_number("a" * 5000 + " 12 " + "b" * 4000 + " 7") == "7"
    assert last_number("9 " + "a" * 5000) == "9"


def test_unwrap_is_none_when_nothing_was_unwrapped():
    from mathrl.verify.extract import unwrap

    assert unwrap(" a$b ") is None and unwrap("Answer: $12$") == "$12$"
