"""`mathrl tasks ...`: list, show, check and create tasks. Registered by mathrl/cli.py.

Thin, like the main CLI: each command calls the mathrl.tasks API. Known errors (bad spec,
missing data) print one line and exit with code 2; `mathrl tasks check` exits 1 when a check
fails. Imports stay light (no torch, no datasets) until a command needs data.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
import yaml

tasks_app = typer.Typer(help="List, inspect, check and create tasks (tasks/*.yaml).",
                        no_args_is_help=True, add_completion=False)

TASKS_DIR_HELP = "Extra directory of task YAMLs (also $MATHRL_TASKS_PATH); overrides built-ins."
DATA_HELP = "Local data directory for Hub tasks: DIR with the split files, or DIR/<task>/."
TasksDir = typer.Option(None, "--tasks-dir", help=TASKS_DIR_HELP)
Data = typer.Option(None, "--data", help=DATA_HELP)


@contextmanager
def _one_line_errors():
    from mathrl.tasks import TaskDataError, TaskSpecError

    try:
        yield
    except (TaskSpecError, TaskDataError, OSError) as e:
        typer.echo(f"mathrl: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                   err=True)
        raise typer.Exit(2) from None


def _str(path: Optional[Path]) -> Optional[str]:
    return None if path is None else str(path)


@tasks_app.command("list")
def list_(tasks_dir: Optional[Path] = TasksDir, data: Optional[Path] = Data) -> None:
    """Every task: name, version, source and declared sizes."""
    from mathrl.tasks import builtin_tasks_dir, list_tasks

    with _one_line_errors():
        tasks = list_tasks(_str(tasks_dir), _str(data))
    builtin = builtin_tasks_dir().resolve()
    rows = [(t.name, str(t.version), t.source_desc,
             " ".join(f"{s}={n}" for s, n in t.sizes.items()) or "-",
             "" if t.path.parent == builtin else str(t.path.parent)) for t in tasks]
    header = ("name", "version", "source", "sizes", "from (if not built-in)")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


@tasks_app.command()
def show(name: str = typer.Argument(..., help="Task name or path to a task YAML."),
         split: Optional[str] = typer.Option(None, "--split", help="Split of the sample prompt "
                                             "(default: test if present)."),
         tasks_dir: Optional[Path] = TasksDir, data: Optional[Path] = Data) -> None:
    """The resolved spec, then one rendered prompt, its gold and SFT target."""
    from mathrl.tasks import get_task

    with _one_line_errors():
        task = get_task(name, data_dir=_str(data), tasks_dir=_str(tasks_dir))
        split = split or ("test" if "test" in task.splits else task.splits[0])
        problem = task.load(split, limit=1, seed=None)[0]  # before any output: errors stay one line
    typer.echo(f"# {task.ref} from {task.path}")
    typer.echo(yaml.safe_dump(task.spec, sort_keys=False, allow_unicode=True, width=100))
    typer.echo(f"# ---- prompt: {split} {problem.id} ----")
    if problem.messages is not None:
        for m in problem.messages:
            typer.echo(f"[{m['role']}]\n{m['content']}")
    else:
        typer.echo(problem.prompt)
    typer.echo(f"# ---- gold: {problem.gold}\n# ---- SFT target ----")
    typer.echo(task.format_solution(problem))


@tasks_app.command()
def check(name: Optional[str] = typer.Argument(None, help="Task name or YAML path (default: all)."),
          limit: int = typer.Option(1000, "--limit", help="Problems per split to check (0: all)."),
          allow_missing_data: bool = typer.Option(False, "--allow-missing-data",
                                                  help="Skip splits whose data cannot be found "
                                                       "instead of failing."),
          quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
          tasks_dir: Optional[Path] = TasksDir, data: Optional[Path] = Data) -> None:
    """Schema, `examples:`, and every gold answer grading correct against itself."""
    from tqdm import tqdm

    from mathrl.tasks import get_task, list_tasks
    from mathrl.tasks.check import check_task

    def progress(items, total, desc):
        return tqdm(items, total=total, desc=desc, file=sys.stderr, disable=quiet, leave=False)

    with _one_line_errors():
        tasks = ([get_task(name, data_dir=_str(data), tasks_dir=_str(tasks_dir))] if name
                 else list_tasks(_str(tasks_dir), _str(data)))
    failed = 0
    for task in tasks:
        with _one_line_errors():  # e.g. a grader hook that does not import
            result = check_task(task, limit or None, progress,
                                missing_data_fails=not allow_missing_data)
        failed += not result.ok
        typer.echo(result.summary())
        for line in result.failures:
            typer.echo(f"  - {line}")
    if failed:
        typer.echo(f"{failed} of {len(tasks)} tasks failed", err=True)
        raise typer.Exit(1)


@tasks_app.command()
def new(name: str = typer.Argument(..., help="Name of the new task (file <name>.yaml)."),
        jsonl: Path = typer.Option(..., "--jsonl", help="Local data file (.jsonl; .csv and "
                                   ".parquet work too). One file is cut 80/20 into train/test."),
        question_field: str = typer.Option(..., "--question-field", help="Record field with "
                                           "the question."),
        answer_field: str = typer.Option(..., "--answer-field", help="Record field with the "
                                         "gold final answer."),
        solution_field: Optional[str] = typer.Option(None, "--solution-field",
                                                     help="Record field with a worked solution "
                                                          "(SFT targets)."),
        test_jsonl: Optional[Path] = typer.Option(None, "--test-jsonl", help="Separate test "
                                                  "file; then --jsonl is all train."),
        extractor: str = typer.Option("boxed", "--extractor", help="Answer extractor: boxed, "
                                      "gsm8k, answer_is, answer_colon, last_number, auto."),
        mode: str = typer.Option("math", "--mode", help="Grading mode: math, numeric, exact."),
        tasks_dir: Path = typer.Option(Path("tasks"), "--tasks-dir", help="Where to write "
                                       "<name>.yaml."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing task file."),
        hook: bool = typer.Option(False, "--hook", help="Also write <name>.py, a grader hook "
                                  "(the task's own verifier: partial credit, property checks) "
                                  "that the YAML names as grader.hook."),
        ) -> None:
    """Write a working task YAML from a local data file, examples taken from it."""
    from mathrl.tasks.scaffold import new_task

    with _one_line_errors():
        path = new_task(name, jsonl, question_field, answer_field, tasks_dir=tasks_dir,
                        solution_field=solution_field, test_file=test_jsonl,
                        extractor=extractor, mode=mode, force=force, hook=hook)
    wrote = f"{path} and {path.with_suffix('.py')}" if hook else str(path)
    typer.echo(f"wrote {wrote}\nnext: mathrl tasks check {name} --tasks-dir {tasks_dir}")
