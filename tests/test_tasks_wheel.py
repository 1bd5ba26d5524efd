"""The built-in tasks ship in the wheel (package `mathrl.builtin_tasks`) and are found there.

Builds a wheel from a copy of the source tree (the working tree stays clean of build/ and
egg-info), installs it into a temporary folder and runs the task loader from there, outside
the repository, so that only the installed route can succeed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO


pytest.importorskip("setuptools")


def test_wheel_ships_and_finds_the_builtin_tasks(tmp_path):
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("mathrl", "tasks", "evals"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, src / folder, ignore=ignore)
        else:
            (src / folder).mkdir(parents=True)
    for file in ("pyproject.toml", "README.md"):
        if (REPO / file).is_file():
            shutil.copy(REPO / file, src / file)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, timeout=240, capture_output=True)
    wheel = next((tmp_path / "dist").glob("mathrl-*.whl"))
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   timeout=120, capture_output=True)
    code = ("import mathrl.tasks as t; print(t.__file__); d = t.builtin_tasks_dir(); "
            "print(d); print(' '.join(x.name for x in t.list_tasks())); "
            "print(t.get_task('arithmetic').load('test', limit=1)[0].solution.splitlines()[-1])")
    # -S: no .pth files, so an editable install of the checkout cannot shadow the wheel; the
    # dependencies still come from this environment's site-packages, named explicitly
    path = os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]])
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path,
                          env={"PYTHONPATH": path}, timeout=60, capture_output=True, text=True)
    # e.g. "No module named 'mathrl.tasks'": pyproject's `packages` must list every package
    assert proc.returncode == 0, proc.stderr.strip().splitlines()[-1]
    out = proc.stdout.splitlines()
    assert Path(out[0]).is_relative_to(site), f"mathrl.tasks imported from {out[0]}"
    out = out[1:]
    assert Path(out[0]) == site / "mathrl" / "builtin_tasks"
    assert out[1].split() == sorted(p.stem for p in (REPO / "tasks").glob("*.yaml"))
    assert out[2].startswith("#### ")  # the generator hook ran from inside the wheel
