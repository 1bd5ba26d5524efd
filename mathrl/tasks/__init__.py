"""Tasks as data: `tasks/<name>.yaml` (+ an optional Python hook) -> `Task`.

Where tasks are found, first match wins (so a user task named like a built-in overrides it):
  1. `tasks_dir` (the `--tasks-dir` option; one folder or a list),
  2. the folders in `$MATHRL_TASKS_PATH` (os.pathsep-separated),
  3. the built-in tasks: package `mathrl.builtin_tasks` when installed from a wheel, else the
     repository's `tasks/` folder (source checkout).
`name` may also be a path to a .yaml file.
"""

from __future__ import annotations

import os
from pathlib import Path

from mathrl.tasks.sources import SOURCES, TaskDataError
from mathrl.tasks.spec import TaskSpecError
from mathrl.tasks.task import Task

__all__ = ["Task", "TaskDataError", "TaskSpecError", "SOURCES", "builtin_tasks_dir",
           "task_dirs", "get_task", "list_tasks"]

_SUFFIXES = (".yaml", ".yml")


def builtin_tasks_dir() -> Path:
    """The folder of the built-in task YAMLs."""
    try:
        from importlib.resources import files

        root = Path(str(files("mathrl.builtin_tasks")))
        if root.is_dir():
            return root
    except (ModuleNotFoundError, TypeError):  # source checkout: no such package installed
        pass
    return Path(__file__).resolve().parents[2] / "tasks"


def task_dirs(tasks_dir: str | Path | list | tuple | None = None) -> list[Path]:
    """Folders searched for tasks, highest priority first."""
    given = [] if tasks_dir is None else (
        list(tasks_dir) if isinstance(tasks_dir, (list, tuple)) else [tasks_dir])
    env = [p for p in os.environ.get("MATHRL_TASKS_PATH", "").split(os.pathsep) if p]
    dirs = [Path(p).expanduser() for p in [*given, *env]] + [builtin_tasks_dir()]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def _task_files(tasks_dir) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in reversed(task_dirs(tasks_dir)):  # lowest priority first, so later ones override
        if d.is_dir():
            found.update({p.stem: p for p in sorted(d.iterdir()) if p.suffix in _SUFFIXES})
    return found


def get_task(name: str | Path, data_dir: str | None = None, tasks_dir=None,
             overrides: dict | None = None, task_config: dict | None = None) -> Task:
    """Load a task by name (or .yaml path); no data is read until `Task.load`.

    `overrides` deep-merges into the spec (e.g. {"prompt": {"format": "plain"}});
    `task_config` merges into `source.config` (e.g. {"digits": 2}). Either changes `Task.ref`.
    """
    text = str(name)
    if text.endswith(_SUFFIXES) or os.sep in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise TaskSpecError(f"task file {path} does not exist")
    else:
        files = _task_files(tasks_dir)
        if text not in files:
            raise TaskSpecError(f"unknown task {text!r}; known: {', '.join(sorted(files))} "
                                f"(searched {', '.join(map(str, task_dirs(tasks_dir)))})")
        path = files[text]
    return Task.from_file(path, data_dir=data_dir, overrides=overrides, task_config=task_config)


def list_tasks(tasks_dir=None, data_dir: str | None = None) -> list[Task]:
    """Every task visible from `tasks_dir`, sorted by name (specs only; no data is read)."""
    return [Task.from_file(path, data_dir=data_dir)
            for _, path in sorted(_task_files(tasks_dir).items())]
