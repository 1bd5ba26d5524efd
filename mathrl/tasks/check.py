"""`check_task`: does a task grade what it claims to? (`mathrl tasks check`, and the tests)

Three checks, cheapest first: the spec's `examples:` grade as declared; few-shot responses
with an `answer` grade correct; on the loaded problems, the answer line built from each gold
(and the SFT target, when there is a worked solution) grades correct against that gold.
A grader or gold extraction that fails its own gold cannot reward a model either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from mathrl.tasks.sources import TaskDataError
from mathrl.tasks.task import Task

GRADE_CHUNK = 64  # problems per grade_batch call: one progress-bar tick


@dataclass
class CheckResult:
    task: str
    failures: list[str] = field(default_factory=list)  # one line each
    counts: dict[str, int] = field(default_factory=dict)  # what was checked, e.g. test/golds

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        done = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        state = "ok" if self.ok else f"FAILED ({len(self.failures)})"
        return f"{self.task}: {state}; checked {done}"


def _no_progress(items: Iterable, total: int, desc: str) -> Iterable:
    return items


def check_examples(task: Task, result: CheckResult) -> None:
    for i, (ex, grade) in enumerate(task.run_examples()):
        if grade.correct != ex["correct"]:
            result.failures.append(
                f"examples[{i}]: expected correct={ex['correct']}, got {grade.correct} "
                f"(extracted {grade.extracted!r}, {grade.reason}) for {ex['completion'][-60:]!r}")
    result.counts["examples"] = len(task.spec["examples"])
    shots = [s for s in task.spec["prompt"]["fewshot"] if s.get("answer") is not None]
    for i, shot in enumerate(shots):
        grade = task.grade(shot["response"], task.example_problem(shot, i))
        if not grade.correct:
            result.failures.append(f"prompt.fewshot[{i}]: the response does not grade correct "
                                   f"against its answer {shot['answer']!r} ({grade.reason})")
    if shots:
        result.counts["fewshot"] = len(shots)


def check_split(task: Task, split: str, limit: int | None, result: CheckResult,
                progress: Callable = _no_progress) -> None:
    problems = task.load(split, limit=limit, seed=None)
    declared = task.sizes.get(split)
    if limit is None and declared is not None and not task.procedural:
        if len(task.records(split)) != declared:
            result.failures.append(f"{split}: source.sizes declares {declared} records, "
                                   f"loaded {len(task.records(split))}")
    targets = [("golds", lambda p: task.answer_line(p.gold), problems)]
    with_solution = [p for p in problems if p.solution]
    if with_solution:
        targets.append(("solutions", task.format_solution, with_solution))
    for label, make, subset in targets:
        chunks = [subset[i:i + GRADE_CHUNK] for i in range(0, len(subset), GRADE_CHUNK)]
        bad = 0
        for chunk in progress(chunks, len(chunks), f"{task.name} {split} {label}"):
            grades = task.grade_batch([make(p) for p in chunk], chunk)
            for p, g in zip(chunk, grades):
                if not g.correct:
                    bad += 1
                    if bad <= 5:  # the first few say what is wrong; the count says how often
                        result.failures.append(
                            f"{split} {p.id}: {label[:-1]} does not grade correct against gold "
                            f"{p.gold!r} (extracted {g.extracted!r}, {g.reason})")
        if bad > 5:
            result.failures.append(f"{split}: {bad} of {len(subset)} {label} fail in total")
        result.counts[f"{split}/{label}"] = len(subset)


def check_task(task: Task, limit: int | None = None, progress: Callable = _no_progress,
               missing_data_fails: bool = True) -> CheckResult:
    """Run every check on every split; a split without data fails, or is skipped if allowed."""
    result = CheckResult(task.ref)
    check_examples(task, result)
    for split in task.splits:
        try:
            check_split(task, split, limit, result, progress)
        except TaskDataError as e:
            if missing_data_fails:
                result.failures.append(str(e).splitlines()[0])
            else:
                result.counts[f"{split}/skipped (no data)"] = 0
    return result
