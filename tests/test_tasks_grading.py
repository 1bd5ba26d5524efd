"""Tasks grade what they claim: `examples:`, gold answers against themselves, real data."""

from __future__ import annotations

import random

import pytest
from conftest import shared_data_dir

from mathrl.tasks import builtin_tasks_dir, get_task
from mathrl.tasks.check import check_task

BUILTIN = sorted(p.stem for p in builtin_tasks_dir().glob("*.yaml"))
DATA = shared_data_dir()
needs_gsm8k = pytest.mark.skipif(DATA is None or not (DATA / "gsm8k" / "test.jsonl").is_file(),
                                 reason="../shared/data/gsm8k absent")
needs_math500 = pytest.mark.skipif(DATA is None or not (DATA / "math500" / "test.jsonl").is_file(),
                                   reason="../shared/data/math500 absent")


@pytest.mark.parametrize("name", BUILTIN)
def test_examples_grade_as_declared(name):
    task = get_task(name)
    wrong = [(ex["completion"], ex["gold"], ex["correct"], g.reason)
             for ex, g in task.run_examples() if g.correct != ex["correct"]]
    assert not wrong, wrong


@pytest.mark.parametrize("name", [n for n in BUILTIN
                                  if get_task(n).spec["source"]["type"] != "hub"])
def test_generated_tasks_pass_check(name):
    """Offline tasks: answer lines and SFT targets grade correct on a sample of both splits."""
    small = {"source": {"sizes": {"train": 200, "test": 100}}}  # full sizes take seconds
    result = check_task(get_task(name, overrides=small), limit=40)
    assert result.ok, result.failures
    assert result.counts["test/golds"] == 40


def test_check_catches_an_answer_format_the_extractor_cannot_read():
    # \boxed{answer} (single braces) renders as \boxed42: no answer is ever extracted
    task = get_task("chain-sum", overrides={"prompt": {"answer_format": "\\boxed{answer}"},
                                            "source": {"sizes": {"train": 5, "test": 5}}})
    result = check_task(task)
    assert not result.ok
    assert any("does not grade correct" in line for line in result.failures)


def test_grade_and_grade_batch_use_the_tasks_extractor():
    task = get_task("arithmetic")
    p = task.load("test", limit=1)[0]
    good, bad = f"work\n#### {p.gold}", f"The answer is {p.gold}."  # gsm8k extractor: strict
    assert task.grade(good, p).correct and not task.grade(bad, p).correct
    grades = task.grade_batch([good, bad, task.format_solution(p)], [p, p, p])
    assert [g.correct for g in grades] == [True, False, True]
    with pytest.raises(ValueError, match="2 completions for 1 problems"):
        task.grade_batch([good, bad], [p])


# ---- real data --------------------------------------------------------------------------------


@needs_gsm8k
def test_gsm8k_all_test_golds_match_the_official_answer_and_grade():
    import json

    task = get_task("gsm8k", data_dir=str(DATA))
    problems = task.load("test", seed=None)
    rows = [json.loads(line) for line in open(DATA / "gsm8k" / "test.jsonl")]
    assert len(problems) == len(rows) == 1319
    for p, row in zip(problems, rows):
        # the official rule, independently: text after the last ####, commas removed
        assert p.gold == row["answer"].split("####")[-1].strip().replace(",", "")
        assert p.question == row["question"] and p.meta["answer"] == row["answer"]
        assert "<<" not in p.solution and p.solution.endswith(f"\n#### {p.gold}")
    right = task.grade_batch([f"So the total is this.\n#### {p.gold}" for p in problems], problems)
    wrong = task.grade_batch([f"#### {int(p.gold) + 1}" for p in problems], problems)
    assert all(g.correct for g in right), [g for g in right if not g.correct][:3]
    assert not any(g.correct for g in wrong)
    sft = task.grade_batch([task.format_solution(p) for p in problems], problems)
    assert all(g.correct for g in sft)


@needs_gsm8k
def test_gsm8k_train_split_and_data_dir_forms():
    import json

    a = get_task("gsm8k", data_dir=str(DATA)).load("train", seed=None)
    b = get_task("gsm8k", data_dir=str(DATA / "gsm8k")).load("train", seed=None)
    assert len(a) == 7473 and a == b
    rows = [json.loads(line) for line in open(DATA / "gsm8k" / "train.jsonl")]
    assert [p.gold for p in a] == [r["answer"].split("####")[-1].strip().replace(",", "")
                                   for r in rows]


@needs_math500
def test_math500_all_golds_grade_against_themselves():
    # all 500 take well under a second with the verifier's fast paths; mark `slow` if not
    task = get_task("math500", data_dir=str(DATA))
    problems = task.load("test", seed=None)
    assert len(problems) == 500 and problems[0].id.startswith("test/")
    completions = [f"Thus the answer is $\\boxed{{{p.gold}}}$." for p in problems]
    failed = [(p.id, p.gold) for p, g in zip(problems, task.grade_batch(completions, problems))
              if not g.correct]
    assert failed == []
    # the official solutions (the SFT targets) end in a \boxed{} that grades correct, too
    sft = task.grade_batch([task.format_solution(p) for p in problems], problems)
    assert all(g.correct for g in sft)


@needs_math500
def test_math500_swapped_golds_grade_wrong():
    from mathrl.verify import equivalent

    task = get_task("math500", data_dir=str(DATA))
    sample = random.Random(0).sample(task.load("test", seed=None), 100)
    pairs = list(zip(sample, sample[1:] + sample[:1]))
    grades = task.grade_batch([f"$\\boxed{{{q.gold}}}$" for _, q in pairs], [p for p, _ in pairs])
    # a swapped answer passes only where the two golds are the same answer (e.g. "15" and
    # "15\\mbox{ cm}^2": units are dropped)
    passed = [(p.gold, q.gold) for (p, q), g in zip(pairs, grades) if g.correct]
    assert all(equivalent(a, b) for a, b in passed) and len(passed) <= 3, passed
