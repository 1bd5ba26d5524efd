"""`new_task`: write a working task YAML from a local data file (`mathrl tasks new`).

The YAML it writes is an ordinary task file, meant to be read and edited: the prompt, the
extractor and mode are sensible defaults (\\boxed{} answers, symbolic equivalence), and the
`examples:` come from the file's first record, so `mathrl tasks check` passes straight away.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from mathrl.tasks.sources import READERS, TaskDataError, read_file
from mathrl.tasks.spec import TaskSpecError, render
from mathrl.tasks.task import Task

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
HOLDOUT = 20  # percent of a single data file kept as the test split
MIN_FOR_SPLIT = 10  # smaller files become a test split only
CHARS_PER_TOKEN = 3.0  # conservative (English text is ~4; LaTeX and digits are denser)

# extractor -> (what the prompt asks for, how a completion ends): the pair must agree, or
# no answer is ever extracted
ANSWER_STYLES = {
    "boxed": ("Reason step by step and put your final answer within \\boxed{}.",
              "The final answer is $\\boxed{{answer}}$."),
    "auto": ("Reason step by step and put your final answer within \\boxed{}.",
             "The final answer is $\\boxed{{answer}}$."),
    "gsm8k": ("Reason step by step. End with the final answer on its own line after '####'.",
              "#### {answer}"),
    "answer_is": ("Reason step by step. End with 'The answer is <answer>.'",
                  "The answer is {answer}."),
    "answer_colon": ("Reason step by step. End with a line 'Answer: <answer>'.",
                     "Answer: {answer}"),
    "last_number": ("Reason step by step. End with the final number.", "The answer is {answer}"),
}

_TEMPLATE_HEADER = """\
# Written by `mathrl tasks new`. Edit freely, then run `mathrl tasks check {name}`.
# Bump `version` whenever a change could move a score (prompt, gold rule, grader, data).
# Fields: see tasks/README.md. Relative data paths are relative to this file.
"""


_HOOK_TEMPLATE = '''\
"""Grader hook of the task `{name}` ({name}.yaml): the task's own verdict on a completion.

Written by `mathrl tasks new --hook`; edit it (partial credit, a property check, several
valid forms), then run `mathrl tasks check {name}`. Called as grade(completion, answer,
problem) in an isolated worker process, killed after grader.timeout seconds: `answer` is what
the task's extractor found (None if nothing), `problem` a dict with id, question, gold and
meta. Return True/False, a score in [0, 1], or (verdict, reason). Model text is hostile:
parse it with mathrl.verify.expression, never with eval, sympify or parse_expr.
"""

from mathrl.verify.expression import ExpressionError, parse_expression


def grade(completion, answer, problem):
    if answer is None:
        return False, "no_answer"
    try:
        gold = parse_expression(problem["gold"]).value()
    except ExpressionError:  # not a number: compare the text
        return answer.strip() == problem["gold"].strip()
    try:
        return parse_expression(answer).value() == gold
    except ExpressionError as e:
        return False, e.reason
'''


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as `|` blocks, so the prompt reads as it will be sent."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def _ref(file: Path, tasks_dir: Path) -> str:
    """The data path as the YAML will store it: relative when it lives under the tasks dir."""
    file, tasks_dir = file.resolve(), tasks_dir.resolve()
    try:
        return str(file.relative_to(tasks_dir))
    except ValueError:
        return str(file)


def _wrong(gold: str) -> str | None:
    """A different value of the same kind, for a `correct: false` example."""
    try:
        value = float(gold.replace(",", ""))
    except ValueError:
        return None
    return str(int(value) + 1) if value.is_integer() else repr(value + 1)


def new_task(name: str, data_file: str | Path, question_field: str, answer_field: str,
             tasks_dir: str | Path = "tasks", solution_field: str | None = None,
             test_file: str | Path | None = None, extractor: str = "boxed", mode: str = "math",
             force: bool = False, hook: bool = False) -> Path:
    """Write `<tasks_dir>/<name>.yaml` and return its path (validated by loading it); with
    `hook`, also `<name>.py`, a grader hook the YAML names (mathrl/tasks/hooks.py)."""
    if extractor not in ANSWER_STYLES:
        raise TaskSpecError(f"extractor {extractor!r}; allowed: {', '.join(ANSWER_STYLES)}")
    if not _NAME.match(name):
        raise TaskSpecError(f"task name {name!r}: use lower-case letters, digits, '-', '_' "
                            f"and '.', starting with a letter or digit")
    tasks_dir = Path(tasks_dir).expanduser()
    out = tasks_dir / f"{name}.yaml"
    hook_file = tasks_dir / f"{name}.py"
    for path in (out, hook_file) if hook else (out,):
        if path.exists() and not force:
            raise TaskSpecError(f"{path} exists; pass --force to overwrite it")
    data_file = Path(data_file).expanduser()
    fmt = data_file.suffix.lstrip(".")
    if data_file.suffix not in READERS or fmt == "json":
        raise TaskDataError(f"{data_file}: unsupported data file type {data_file.suffix!r}; "
                            f"allowed: .jsonl, .parquet, .csv")
    rows = read_file(str(data_file.resolve()), Path.cwd())
    if not rows:
        raise TaskDataError(f"{data_file} has no records")
    wanted = [("--question-field", question_field), ("--answer-field", answer_field),
              ("--solution-field", solution_field)]
    for option, key in wanted:
        if key is not None and key not in rows[0]:
            raise TaskDataError(f"{data_file}: {option} {key!r} is not a field of its records; "
                                f"fields: {', '.join(rows[0])}")

    tasks_dir.mkdir(parents=True, exist_ok=True)
    ref = _ref(data_file, tasks_dir)
    if test_file is not None:
        files = {"train": ref, "test": _ref(Path(test_file).expanduser(), tasks_dir)}
        sizes = {"train": len(rows), "test": len(read_file(files["test"], tasks_dir))}
    elif len(rows) >= MIN_FOR_SPLIT:
        # one file: a fixed, disjoint train/test cut (the file order decides; shuffle the file
        # first if it is sorted by difficulty or topic)
        files = {"train": f"{ref}[:{100 - HOLDOUT}%]", "test": f"{ref}[{100 - HOLDOUT}%:]"}
        sizes = {s: len(read_file(f, tasks_dir)) for s, f in files.items()}
    else:
        files, sizes = {"test": ref}, {"test": len(rows)}

    ask, answer_format = ANSWER_STYLES[extractor]
    gold = str(rows[0][answer_field]).strip()
    examples = [{"completion": "Reasoning...\n" + render(answer_format, answer=gold),
                 "gold": gold, "correct": True, "note": "from the first record"},
                {"completion": "I am not sure.", "gold": gold, "correct": False,
                 "note": "no final answer"}]
    if _wrong(gold) is not None:
        examples.append({"completion": render(answer_format, answer=_wrong(gold)),
                         "gold": gold, "correct": False, "note": "a different value"})
    longest = max((len(str(r.get(solution_field, ""))) for r in rows), default=0)
    # the longest gold solution in tokens (estimated), +50% headroom, in steps of 128
    max_new = max(512, 128 * math.ceil(1.5 * longest / CHARS_PER_TOKEN / 128))
    spec = {
        "name": name,
        "version": 1,
        "description": f"User task from {data_file.name} ({sum(sizes.values())} problems).",
        "citation": "",
        "source": {"type": fmt, "files": files, "sizes": sizes},
        "fields": {"question": question_field, "answer": answer_field,
                   **({"solution": solution_field} if solution_field else {})},
        "solution": {"append_answer": True},
        "prompt": {"format": "chat", "system": "",
                   "user": "{question}\n" + ask,
                   "answer_format": answer_format},
        "grader": {"extractor": extractor, "mode": mode,
                   **({"hook": f"{hook_file.name}:grade"} if hook else {})},
        "generation": {"max_new_tokens": max_new},
        "examples": examples,
    }
    text = _TEMPLATE_HEADER.format(name=name) + yaml.dump(
        spec, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    if hook:
        hook_file.write_text(_HOOK_TEMPLATE.format(name=name), encoding="utf-8")
    tmp = out.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        Task.from_file(tmp.rename(out))
    except (TaskSpecError, TaskDataError):
        out.unlink()
        if hook:
            hook_file.unlink()
        raise
    return out
