"""Grader hooks (`grader: {hook: file.py:function}`): the verdict, the protections, training.

A hook runs under the answer checker's protections: a hang costs one "timeout" verdict
within its limit, a raise, a bad return value or a dead worker one "error" verdict, and the
next call works again. A hook file that does not import stops the run with one line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mathrl.cli import app
from mathrl.tasks import TaskSpecError, get_task
from mathrl.tasks.hooks import HookError
from mathrl.types import Problem

SLACK = 3.0  # seconds beyond the timeout on a loaded machine (as in verify/test_adversarial.py)

HOOK = '''
import os, time

def grade(completion, answer, problem):
    if completion == "sleep":
        time.sleep(60)
    if completion == "raise":
        raise ValueError("boom")
    if completion == "exit":
        os._exit(3)
    if completion == "memory":
        bytearray(16 << 30)  # past the worker's address-space limit: MemoryError
    if completion == "half":
        return 0.5
    if completion == "bad":
        return "yes"
    if completion == "meta":
        return problem["meta"]["k"] == 7, "saw meta"
    return answer == problem["gold"]

def half_credit(completion, answer, problem):
    return {"score": 1.0 if completion == "full" else 0.5, "reason": "half", "answer": "x"}
'''

TASK = """
name: {name}
version: 1
description: A task with its own grader hook (test).
source: {{type: jsonl, files: {{train: q.jsonl, test: q.jsonl}}}}
fields: {{question: q, answer: a, meta: [k]}}
prompt: {{format: chat, user: "{{question}}", answer_format: "{{answer}}"}}
grader: {{hook: "{hook}", extractor: last_number, timeout: 1.0}}
generation: {{max_new_tokens: 8}}
examples:
  - {{completion: "it is 4", gold: "4", correct: true}}
  - {{completion: "it is 5", gold: "4", correct: false}}
  - {{completion: "meta", gold: "4", correct: true, meta: {{k: 7}}}}
"""


@pytest.fixture(scope="module")
def hook_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hooked")
    (d / "hooks.py").write_text(HOOK)
    (d / "q.jsonl").write_text("".join(json.dumps({"q": f"Say {i}", "a": str(i), "k": 7}) + "\n"
                                       for i in range(10)))
    (d / "hooked.yaml").write_text(TASK.format(name="hooked", hook="hooks.py:grade"))
    (d / "half.yaml").write_text(TASK.format(name="half", hook="hooks.py:half_credit")
                                 .split("examples:")[0] + "examples:\n"
                                 "  - {completion: full, gold: '1', correct: true}\n"
                                 "  - {completion: b, gold: '1', correct: false}\n")
    return d


def grade(task, completion: str):
    problem = Problem(id="p", question="q", gold="4", meta={"k": 7})
    start = time.monotonic()
    g = task.grade(completion, problem)
    return g, time.monotonic() - start


def test_verdicts_scores_and_the_problem_reach_the_hook(hook_dir):
    task = get_task("hooked", tasks_dir=hook_dir)
    assert all(g.correct == ex["correct"] for ex, g in task.run_examples())
    g, _ = grade(task, "so 4")
    assert (g.correct, g.extracted, g.reason, g.score, g.value) == (True, "4", "equal", 1.0, 1.0)
    g, _ = grade(task, "half")
    assert (g.correct, g.reason, g.value) == (False, "partial", 0.5)  # correct means full score
    assert grade(task, "meta")[0].reason == "saw meta"


@pytest.mark.parametrize("completion, reason", [
    ("sleep", "timeout"),
    ("raise", "error: ValueError: boom"),
    ("bad", "error: the hook returned 'yes'"),
    ("exit", "error: the hook's worker died"),
    ("memory", "error: MemoryError"),
])
def test_a_failing_hook_costs_one_verdict_within_its_timeout(hook_dir, completion, reason):
    task = get_task("hooked", tasks_dir=hook_dir)
    g, seconds = grade(task, completion)
    assert not g.correct and g.value == 0.0 and g.reason.startswith(reason), g
    assert seconds < 1.0 + SLACK
    assert grade(task, "so 4")[0].correct  # the next call is served as usual


def test_hook_errors_at_load_time_name_the_file(tmp_path):
    (tmp_path / "t.yaml").write_text(TASK.format(name="t", hook="h.py:grade"))
    with pytest.raises(TaskSpecError, match="hook file .*h.py does not exist"):
        get_task("t", tasks_dir=tmp_path)
    (tmp_path / "h.py").write_text("def other(c, a, p):\n    return True\n")
    with pytest.raises(TaskSpecError, match="h.py defines no 'grade'"):
        get_task("t", tasks_dir=tmp_path)
    (tmp_path / "h.py").write_text("def grade(c, a, p)\n")
    with pytest.raises(TaskSpecError, match="h.py line 1"):
        get_task("t", tasks_dir=tmp_path)


def test_a_hook_that_does_not_import_stops_with_one_line(tmp_path):
    (tmp_path / "t.yaml").write_text(TASK.format(name="t", hook="h.py:grade"))
    (tmp_path / "h.py").write_text("import no_such_module_here\n\ndef grade(c, a, p):\n    return True\n")
    task = get_task("t", tasks_dir=tmp_path)  # nothing of the file runs in this process
    with pytest.raises(HookError, match="cannot run: ModuleNotFoundError"):
        task.grade("4", Problem(id="p", question="q", gold="4"))
    result = CliRunner().invoke(app, ["tasks", "check", "t", "--tasks-dir", str(tmp_path)])
    assert result.exit_code == 2 and "ModuleNotFoundError" in result.output


def test_a_user_task_with_its_own_hook_trains_via_tasks_dir(hook_dir, tmp_path):
    """The reward is the hook's score: 0.5 for every completion."""
    out = tmp_path / "run"
    args = ["run", "--task", "half", "--tasks-dir", str(hook_dir), "--model", "tiny",
            "--max-steps", "1", "--output", str(out), "--quiet"]
    for kv in ("prompts_per_step=2", "group_size=2", "max_new_tokens=4", "eval_limit=2",
               "threads=1", "save_final=false", "samples_every=1"):
        args += ["--set", kv]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    step = next(row for row in map(json.loads, (out / "metrics.jsonl").open()) if "reward/mean" in row)
    assert step["reward/mean"] == 0.5 and step["reward/correct_frac"] == 0.0
    assert step["reward/no_answer_frac"] == 0.0  # the hook named the answer it read
    rows = [json.loads(line) for line in (out / "samples" / "train-step-000001.jsonl").open()]
    assert {(r["extracted"], r["reward"]) for r in rows} == {("x", 0.5)}


@pytest.mark.slow  # generating countdown's 1,200 problems takes most of a minute
def test_countdown_trains_on_tiny_with_rewards_from_its_hook(tmp_path):
    """The issue's command; the answers in the samples are the ones the hook read."""
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--algo", "grpo", "--task", "countdown", "--model", "tiny",
                                      "--max-steps", "2", "--output", str(out), "--quiet",
                                      "--set", "threads=1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    steps = [row for row in map(json.loads, (out / "metrics.jsonl").open()) if "reward/mean" in row]
    assert len(steps) == 2
    rows = [json.loads(line) for line in (out / "samples" / "train-step-000001.jsonl").open()]
    for row in rows:  # a random model writes no 'Answer:' line: the hook reads the last line
        last = row["completion"][-4096:].strip().rsplit("\n", 1)[-1].strip() or None
        assert row["extracted"] == last and row["reward"] == 0.0


def test_tasks_new_scaffolds_a_task_with_a_working_hook(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"q": f"{i}+{i}?", "a": str(2 * i)}) + "\n" for i in range(12)))
    runner = CliRunner()
    result = runner.invoke(app, ["tasks", "new", "sums", "--jsonl", str(data), "--question-field", "q",
                                 "--answer-field", "a", "--hook", "--tasks-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sums.py").is_file()
    task = get_task("sums", tasks_dir=tmp_path)
    assert task.grader_hook == "sums.py:grade"
    result = runner.invoke(app, ["tasks", "check", "sums", "--tasks-dir", str(tmp_path), "--quiet"])
    assert result.exit_code == 0 and "sums@1: ok" in result.output, result.output
    p = task.load("test", limit=1)[0]
    assert task.grade(f"\\boxed{{{p.gold}}}", p).correct
    assert task.grade(f"\\boxed{{{int(p.gold)} + 0/1}}", p).correct  # equal value, other form
    assert not task.grade(f"\\boxed{{{int(p.gold) + 1}}}", p).correct


# ---- the adversarial suite, through the countdown hook ----------------------------------------

COUNTDOWN = Problem(id="c", question="Make 309 from 6, 61, 94, 4.", gold="94*4 - 61 - 6",
                    meta={"numbers": [6, 61, 94, 4], "target": 309})


def code_injections(marker: Path) -> dict[str, str]:
    """Python that would create `marker` if anything evaluated it."""
    m = str(marker)
    return {
        "__import__": f"__import__('os').system('touch {m}')",
        "open": f"open('{m}', 'w').write('x')",
        "exec": f"exec(\"open('{m}', 'w')\")",
        "dunder walk": f"().__class__.__base__.__subclasses__()[0]('{m}')",
        "lambda": f"(lambda: open('{m}', 'w'))()",
        "sympify-style": f"Symbol('x') + __import__('pathlib').Path('{m}').touch()",
    }


@pytest.mark.slow  # imports SymPy's parser: seconds
def test_reasoning_gyms_own_scorer_runs_model_text(tmp_path):
    """The trap the hook avoids is real: parse_expr evaluates Python."""
    from reasoning_gym.games.countdown import CountdownConfig, CountdownDataset

    marker = tmp_path / "ran"
    entry = {"metadata": {"numbers": [6, 61, 94, 4], "target": 309}}
    CountdownDataset(CountdownConfig(size=1, seed=0)).score_answer(
        f"__import__('pathlib').Path('{marker}').touch()", entry)
    assert marker.exists()


def test_hostile_completions_through_the_countdown_hook_are_safe(tmp_path):
    from verify.test_adversarial import BOMBS, TEXT_BOMBS

    task = get_task("countdown")
    timeout = task.spec["grader"]["timeout"]
    marker = tmp_path / "pwned"
    hostile = {**BOMBS, **TEXT_BOMBS, **code_injections(marker)}
    cases = {f"{name} ({form})": text for name, bomb in hostile.items()
             for form, text in (("bare", bomb), ("answer line", f"Answer: {bomb}"))}
    slowest = 0.0
    for name, completion in cases.items():
        g, seconds = _timed(task, completion)
        assert not g.correct and g.value == 0.0, (name, g)
        slowest = max(slowest, seconds)
        assert seconds < timeout + SLACK, (name, seconds)
    assert not marker.exists()  # no code ran, in this process or in the hook's workers
    ok, _ = _timed(task, "Answer: 94*4 - 61 - 6")  # and the hook still serves
    assert ok.correct


def _timed(task, completion: str):
    start = time.monotonic()
    g = task.grade(completion, COUNTDOWN)
    return g, time.monotonic() - start


def test_countdown_hostile_examples_are_not_correct_within_the_timeout():
    task = get_task("countdown")
    hostile = [(i, ex) for i, ex in enumerate(task.spec["examples"])
               if any(kind in ex["note"] for kind in ("exponent bomb", "Python", "1 MB"))]
    assert len(hostile) == 3
    for i, ex in hostile:
        start = time.monotonic()
        g = task.grade(ex["completion"] * ex["repeat"], task.example_problem(ex, i))
        assert not g.correct and time.monotonic() - start < task.spec["grader"]["timeout"] + SLACK
    assert not Path("/tmp/mathrl-countdown-pwned").exists()  # what the __import__ example would touch
