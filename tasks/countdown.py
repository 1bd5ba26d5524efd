"""Grader hook of the built-in `countdown` task (tasks/countdown.yaml).

Any expression that reaches the target earns the reward: there is no single gold answer.
Correct when the answer parses as arithmetic on the given numbers (+ - * / and brackets),
uses each given number exactly once, and equals the target exactly, in rationals.

reasoning-gym's own scorer (`CountdownDataset.score_answer`) calls SymPy's `parse_expr` on
the model's answer, which evaluates Python; this hook parses with mathrl's whitelisted parser
instead (mathrl.verify.expression), so model text never runs. Where we deviate from it: no
0.01 / 0.05 consolation scores (a wrong answer is 0), equality is exact rather than
`np.isclose`, and "expression = target" is accepted when the right side is the target
itself (the numbers are counted on the left side only).
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from mathrl.verify.expression import ExpressionError, parse_expression

ALLOWED = {"add", "sub", "mul", "div", "neg"}


def read_answer(completion: str, answer: str | None) -> str | None:
    """The 'Answer:' line the extractor found, else the last non-empty line: reasoning-gym's
    prompt asks for the bare expression and nothing else."""
    if answer is not None:
        return answer
    tail = completion[-4096:].strip()  # an answer line is short; a 1 MB text is not read whole
    return tail.rsplit("\n", 1)[-1].strip() or None


def check(answer: str, numbers: list[int], target: Fraction) -> str:
    """The reason for one answer: "equal" when it is a solution."""
    try:
        expr = parse_expression(answer)
    except ExpressionError as e:
        if e.reason != "not_an_expression" or "=" not in answer:
            return e.reason
        left, _, right = answer.rpartition("=")
        try:
            if parse_expression(right).value() != target:
                return "not_equal"
            expr = parse_expression(left)
        except ExpressionError as inner:
            return inner.reason
    extra = expr.operations() - ALLOWED
    if extra:
        return f"operation_not_allowed: {', '.join(sorted(extra))}"
    if Counter(expr.numbers()) != Counter(Fraction(n) for n in numbers):
        return "numbers_not_used_once"
    try:
        return "equal" if expr.value() == target else "not_equal"
    except ExpressionError as e:  # division by zero
        return e.reason


def grade(completion: str, answer: str | None, problem: dict) -> dict:
    """The verdict on one completion, with the answer it was given on."""
    text = read_answer(completion, answer)
    if text is None:
        return {"correct": False, "reason": "no_answer"}
    meta = problem["meta"]
    reason = check(text, meta["numbers"], Fraction(meta["target"]))
    return {"correct": reason == "equal", "reason": reason, "answer": text}
