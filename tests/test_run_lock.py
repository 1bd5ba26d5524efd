"""One writer per run directory (issue 26): a second process is refused at once, naming the
holder; a lock left by a dead process is taken over; under DDP every rank gets the same answer."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TINY, comparable, tiny_run
from mathrl.cli import app
from mathrl.run_lock import LOCK_FILE, DirLock, RunInUse


def _run_args(tasks: Path, run: Path, steps: int = 2) -> list[str]:
    return ["run", "--task", "digit", "--tasks-dir", str(tasks), "--output", str(run), "--max-steps", str(steps),
            "--quiet", *[a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]]


def _errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("mathrl: error:")]


def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path, digit_tasks, monkeypatch):
    run = tiny_run(digit_tasks, tmp_path / "run", steps=2)
    before = comparable(run)
    import mathrl.run_state

    def never(*a, **k):  # refused before the model is loaded, not after
        raise AssertionError("the second writer loaded a model")
    monkeypatch.setattr(mathrl.run_state, "load_model", never)
    with DirLock(run):  # the first process, still running (flock: another open file, even in one process)
        for args in (["run", "--resume", str(run), "--max-steps", "3", "--quiet"], _run_args(digit_tasks, run)):
            result = CliRunner().invoke(app, args)
            errors = _errors(result)
            assert result.exit_code == 2 and len(errors) == 1, result.output
            assert f"{run} is in use by another mathrl process (pid {os.getpid()} on host {socket.gethostname()}, " \
                   "started " in errors[0] and "Traceback" not in result.output
    assert comparable(run) == before  # nothing written by the refused processes
    assert (run / LOCK_FILE).read_text() == ""  # released on purpose: empty, no holder to take over from


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, capfd):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from mathrl.run_lock import DirLock
        DirLock({str(tmp_path)!r}).acquire()
        print("locked", flush=True)
        time.sleep(600)""")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunInUse, match=f"pid {holder.pid} on host"):
            DirLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)  # no cleanup: the lock file still names it
        holder.wait()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid
    with DirLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert f"taking over the lock of {tmp_path} from a process that ended without releasing it (pid {holder.pid}" \
           in capfd.readouterr().err


def test_a_failed_start_leaves_no_folder_and_no_lock(tmp_path, digit_tasks):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, _run_args(digit_tasks, run) + ["--set", "eval_split=nope"])
    assert result.exit_code == 2 and not run.exists(), result.output
    tiny_run(digit_tasks, run, steps=1)  # and the lock is free for the next start


def test_two_compares_on_one_output_folder(tmp_path, digit_tasks):
    from mathrl.compare import compare

    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: s\nversion: 1\ndescription: d\nalgorithms: [grpo]\ntasks: [digit]\nseeds: [0]\n"
                     f"common: {{tasks_dir: {digit_tasks}, model: tiny, max_steps: 1, prompts_per_step: 2, "
                     f"group_size: 2, max_new_tokens: 4, eval_limit: 2, threads: 1, save_final: false}}\n")
    with DirLock(tmp_path / "out"):
        with pytest.raises(RunInUse, match="in use by another mathrl process"):
            compare(suite, tmp_path / "out", progress=False, log=lambda line: None)
        assert not (tmp_path / "out" / "runs").exists()
        compare(suite, tmp_path / "out", dry_run=True, log=lambda line: None)  # reading needs no lock


DDP_ARGS = ["--model", "tiny", "--max-steps", "1", "--quiet", "--set", "prompts_per_step=2", "--set", "group_size=2",
            "--set", "max_new_tokens=4", "--set", "eval_limit=2", "--set", "threads=1", "--set", "save_final=false"]


@pytest.mark.slow
def test_under_ddp_every_rank_is_refused_together(tmp_path):
    from conftest import REPO, write_digit_task
    from test_distributed import _free_port

    write_digit_task(tmp_path)
    run = tmp_path / "run"
    with DirLock(run):
        done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                               str(REPO / "accelerate_configs" / "cpu_2proc.yaml"), "--main_process_port", _free_port(),
                               "-m", "mathrl", "run", "--task", "digit", "--tasks-dir", str(tmp_path), "--output",
                               str(run), *DDP_ARGS], cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
                              capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if "is in use by another mathrl process" in line]
    assert done.returncode != 0 and len(errors) == 2, done.stderr[-3000:]  # both ranks left, neither hung
    assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]
