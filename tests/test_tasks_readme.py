"""tasks/README.md's five-step walk-through, executed as written in an empty folder.

Fenced ```bash blocks are run line by line (`mathrl ...` through the real app, in-process;
anything else through bash); a ```yaml block titled with a path is written to that path.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mathrl.cli import app
from mathrl.tasks import get_task

README = Path(__file__).resolve().parents[1] / "tasks" / "README.md"
BLOCK = re.compile(r'^```(\w+)(?: title="([^"]+)")?\n(.*?)^```', re.S | re.M)


def walkthrough() -> list[tuple[str, str | None, str]]:
    text = README.read_text()
    start = text.index("## Adding a task in five steps")
    section = text[start:text.index("\n## ", start + 1)]
    assert len(re.findall(r"^\*\*\d\. ", section, re.M)) == 5, "five numbered steps"
    return BLOCK.findall(section)


def run_step(kind: str, title: str | None, body: str, cwd: Path, run_training: bool) -> list:
    ran = []
    if kind == "yaml":
        assert title, "a yaml block in the walk-through names the file it writes"
        (cwd / title).write_text(body)
        return [f"wrote {title}"]
    assert kind == "bash", kind
    for line in filter(None, (raw.strip() for raw in body.splitlines())):
        if line.startswith("mathrl run") and not run_training:
            ran.append(line)  # checked below through the API that `run` uses
            continue
        if line.startswith("mathrl "):
            result = CliRunner().invoke(app, shlex.split(line)[1:], catch_exceptions=False)
            assert result.exit_code == 0, f"{line}\n{result.output}"
        else:
            env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                         f"{os.environ['PATH']}"}
            subprocess.run(["bash", "-c", line], cwd=cwd, env=env, check=True, timeout=60)
        ran.append(line)
    return ran


def execute(tmp_path: Path, monkeypatch, run_training: bool) -> list[str]:
    monkeypatch.chdir(tmp_path)
    ran = []
    for kind, title, body in walkthrough():
        ran += run_step(kind, title, body, tmp_path, run_training)
    return ran


def test_readme_walkthrough_runs(tmp_path, monkeypatch):
    ran = execute(tmp_path, monkeypatch, run_training=False)
    assert any(line.startswith("mathrl tasks new") for line in ran)
    assert any(line.startswith("mathrl tasks check") for line in ran)
    assert "wrote my_tasks/minutes.yaml" in ran
    run_lines = [line for line in ran if line.startswith("mathrl run")]
    assert run_lines, "step 5 trains on the new task"
    # `mathrl run --task NAME --tasks-dir DIR` resolves the task exactly like this
    args = shlex.split(run_lines[0])
    task = get_task(args[args.index("--task") + 1],
                    tasks_dir=str(tmp_path / args[args.index("--tasks-dir") + 1]))
    train = task.load("train", seed=0)
    assert task.ref == "minutes@1" and len(train) == 160
    p = train[0]
    assert p.messages[0] == {"role": "system", "content": "You are a careful assistant."}
    assert p.messages[2]["role"] == "assistant"  # the one-shot example
    assert task.grade(f"{p.gold}\n#### {p.gold}", p).correct


@pytest.mark.slow
def test_readme_walkthrough_including_training(tmp_path, monkeypatch):
    execute(tmp_path, monkeypatch, run_training=True)
