"""Resume and crash safety (issue 8): a resumed run repeats the uninterrupted one, step for step.

Runs are compared on every metric except the timing keys `time/*` (wall-clock seconds differ
between any two runs). The shared helpers (the digit task, `TINY`, `tiny_run`) are in conftest.py.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import mathrl.train
from conftest import TINY, comparable, tiny_config, tiny_run, write_digit_task  # noqa: F401
from mathrl.checkpoint import COMPLETE, Interrupted, list_checkpoints, load_latest, save_checkpoint
from mathrl.cli import app
from mathrl.results import RunDir

def count_steps(monkeypatch) -> list[int]:
    """Patch train_step to record how many steps actually ran (proves a resume skipped some)."""
    calls: list[int] = []
    inner = mathrl.train.train_step

    def counted(state):
        calls.append(state.step + 1)
        return inner(state)

    monkeypatch.setattr(mathrl.train, "train_step", counted)
    return calls


def drop_checkpoints_after(run_dir: Path, step: int) -> None:
    for path in list_checkpoints(run_dir / "checkpoints"):
        if int(path.name.split("-")[1]) > step:
            shutil.rmtree(path)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, digit_tasks) -> Path:
    """The uninterrupted 4-step GRPO run every resume below is compared with."""
    return tiny_run(digit_tasks, tmp_path_factory.mktemp("ref") / "run")


# ---- resume from a checkpoint -----------------------------------------------------------------

def test_resume_from_step_2_repeats_the_uninterrupted_run(tmp_path, digit_tasks, reference, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    drop_checkpoints_after(run, 2)  # as if the process died during step 3
    calls = count_steps(monkeypatch)
    tiny_run(digit_tasks, run, resume=True)
    assert calls == [3, 4]
    assert comparable(run) == comparable(reference)
    steps = [r["step"] for r in RunDir(run).read_metrics()]
    assert steps == [0, 1, 2, 3, 4, 4]  # step-0 eval, four steps, the final eval: nothing twice


@pytest.mark.parametrize("algo", ["ppo", "dapo"])
def test_resume_restores_value_head_and_dynamic_sampling(tmp_path, digit_tasks, algo):
    # PPO: the value head and its optimizer state; DAPO: extra prompts drawn mid-step
    full = tiny_run(digit_tasks, tmp_path / "full", algo, steps=3)
    run = tmp_path / "cut"
    shutil.copytree(full, run)
    drop_checkpoints_after(run, 1)
    tiny_run(digit_tasks, run, algo, steps=3, resume=True)
    assert comparable(run) == comparable(full)


def test_resume_ignores_a_torn_metrics_line_through_the_cli(tmp_path, digit_tasks, reference):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    drop_checkpoints_after(run, 3)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "reward/me')  # SIGKILL in the middle of an append
    result = CliRunner().invoke(app, ["run", "--resume", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    assert comparable(run) == comparable(reference)


def test_corrupt_newest_checkpoint_is_reported_and_the_previous_one_used(tmp_path, digit_tasks, reference, capfd):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    drop_checkpoints_after(run, 3)
    newest = list_checkpoints(run / "checkpoints")[-1]
    data = (newest / "state.pt").read_bytes()
    (newest / "state.pt").write_bytes(data[: len(data) // 2])  # torn by a crash or a full disk
    tiny_run(digit_tasks, run, resume=True)
    assert "step-0000003" in capfd.readouterr().err  # the skipped checkpoint is named
    assert comparable(run) == comparable(reference)


def test_resume_without_any_checkpoint_restarts_from_step_0(tmp_path, digit_tasks, reference):
    # killed during step 1: config.json and the step-0 eval exist, no checkpoint yet
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    shutil.rmtree(run / "checkpoints")
    RunDir(run).rewind_metrics(0)
    tiny_run(digit_tasks, run, resume=True)
    assert comparable(run) == comparable(reference)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_writes_a_checkpoint_of_the_last_step_and_resume_repeats_the_run(tmp_path, digit_tasks,
                                                                                  reference, monkeypatch, signum):
    run = tmp_path / "run"
    inner = mathrl.train.train_step

    def interrupted_in_step_2(state):
        if state.step == 1:
            os.kill(os.getpid(), signum)  # Ctrl-C, or a scheduler's preemption, while step 2 is running
        return inner(state)

    monkeypatch.setattr(mathrl.train, "train_step", interrupted_in_step_2)
    # checkpoint_every=0: the only checkpoint there can be is the one the signal writes
    handlers = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    with pytest.raises(Interrupted) as stopped:
        tiny_run(digit_tasks, run, checkpoint_every=0)
    assert stopped.value.exit_code == 128 + signum and "after step 2" in str(stopped.value)
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-0000002"]
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == handlers  # put back
    monkeypatch.setattr(mathrl.train, "train_step", inner)
    tiny_run(digit_tasks, run, checkpoint_every=0, resume=True)
    assert comparable(run) == comparable(reference)


@pytest.mark.parametrize("signum,twice", [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)])
def test_cli_reports_the_signal_with_the_checkpoint_and_its_exit_code(tmp_path, digit_tasks, monkeypatch,
                                                                      signum, twice):
    inner = mathrl.train.train_step

    def interrupted(state):
        if state.step == 1:  # in step 2; a second signal stops at once, leaving step 1's checkpoint
            for _ in range(1 + twice):
                os.kill(os.getpid(), signum)
        return inner(state)

    monkeypatch.setattr(mathrl.train, "train_step", interrupted)
    run = tmp_path / "run"
    args = ["run", "--task", "digit", "--tasks-dir", str(digit_tasks), "--output", str(run), "--max-steps", "3",
            "--quiet", *[a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]]
    result = CliRunner().invoke(app, args)
    errors = [line for line in result.stderr.splitlines() if line.startswith("mathrl: error:")]
    assert result.exit_code == 128 + signum, result.output
    assert len(errors) == 1 and f"--resume {run}" in errors[0], result.stderr
    assert ("SIGTERM" in errors[0]) == (signum == signal.SIGTERM)
    assert ("without saving" in errors[0]) == twice and ("step-0000002" in errors[0]) == (not twice)
    assert [p.name for p in list_checkpoints(run / "checkpoints")][-1] == ("step-0000001" if twice else "step-0000002")
    assert "Traceback" not in result.output


# ---- checkpoint files -------------------------------------------------------------------------

def test_checkpoints_are_atomic_validated_and_pruned(tmp_path, capfd):
    ckpts = tmp_path / "checkpoints"
    for step in (1, 2, 3):
        save_checkpoint(ckpts, step, {"step": step, "w": torch.full((3,), float(step))}, keep=2)
    assert [p.name for p in list_checkpoints(ckpts)] == ["step-0000002", "step-0000003"]
    # a crash mid-write leaves only a hidden temporary folder: never listed, cleaned on the next save
    (ckpts / ".tmp-step-0000004-99999").mkdir()
    assert load_latest(ckpts)[1]["step"] == 3
    # a state file that does not match its COMPLETE marker (other size, other step) is skipped
    torch.save({"step": 7}, ckpts / "step-0000003" / "state.pt")
    path, state = load_latest(ckpts)
    assert path.name == "step-0000002" and state["step"] == 2
    assert "step-0000003" in capfd.readouterr().err
    save_checkpoint(ckpts, 4, {"step": 4}, keep=2)
    assert not list(ckpts.glob(".tmp-*"))
    assert [p.name for p in list_checkpoints(ckpts)] == ["step-0000003", "step-0000004"]
    # a folder without its COMPLETE marker (killed before the rename) is not a checkpoint
    (ckpts / "step-0000004" / COMPLETE).unlink()
    assert load_latest(ckpts) is None  # step 3 is the corrupt one from above


# ---- SIGKILL at random points (slow) ----------------------------------------------------------

def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mathrl", "run", "--quiet", *args]


def _last_step(run: Path) -> int:
    try:
        rows = RunDir(run).read_metrics()
    except (OSError, ValueError):
        return -1
    return max((r["step"] for r in rows if "reward/mean" in r), default=-1)


def _kill_at(cmd: list[str], run: Path, trigger: str, new_steps: int, delay: float, timeout: float = 300) -> str | None:
    """Start cmd; SIGKILL it `delay` s after the trigger: "start" (at once: during start-up),
    "config" (config.json written: step-0 eval, step 1, the first checkpoint) or "step" (after
    `new_steps` more steps are logged). Returns what the kill left on disk, None if cmd finished first."""
    first = _last_step(run)
    done = {"start": lambda: True, "config": lambda: (run / "config.json").is_file(),
            "step": lambda: _last_step(run) >= first + new_steps}[trigger]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and not done() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        if proc.poll() is not None:
            return None
        proc.kill()  # SIGKILL: no handler, no cleanup
    finally:
        proc.wait()
    if not (run / "config.json").is_file():
        return "before config.json was written"
    ckpts = list_checkpoints(run / "checkpoints")
    torn = (run / "metrics.jsonl").is_file() and not (run / "metrics.jsonl").read_bytes().endswith(b"\n")
    mid_write = any((run / "checkpoints").glob(".tmp-*"))
    newest = ckpts[-1].name if ckpts else None
    where = f"{trigger} trigger: last logged step {_last_step(run)}, newest checkpoint {newest}"
    return where + (", torn metrics line" if torn else "") + (", checkpoint write in progress" if mid_write else "")


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_repeats_the_run(tmp_path, digit_tasks):
    steps = 6
    fresh = lambda run: _cli("--task", "digit", "--tasks-dir", str(digit_tasks), "--output", str(run),  # noqa: E731
                             "--max-steps", str(steps), *[a for k, v in TINY.items() for a in ("--set", f"{k}={v}")])
    reference = tmp_path / "reference"
    subprocess.run(fresh(reference), check=True, capture_output=True)
    expected = comparable(reference)
    rng = random.Random(int(os.environ.get("MATHRL_KILL_SEED", "8")))
    trials, kills = int(os.environ.get("MATHRL_KILL_TRIALS", "10")), []
    for trial in range(trials):
        run = tmp_path / f"trial-{trial}"
        cmd = fresh(run)
        # one to three kills per trial, at a random trigger plus a random fraction of a step
        for _ in range(rng.randint(1, 3)):
            trigger = rng.choice(["start", "config", "step", "step", "step"])
            killed = _kill_at(cmd, run, trigger, rng.randint(1, 3), rng.uniform(0, 0.6))
            kills += [killed] if killed else []
            # killed before config.json: nothing to resume, the user repeats the command; killed
            # after step 1 was logged but before its checkpoint: --restart replays from step 0
            cmd = _cli("--resume", str(run), "--restart") if (run / "config.json").is_file() else fresh(run)
        subprocess.run(cmd, check=True, capture_output=True)
        assert comparable(run) == expected, f"trial {trial} differs"
        assert not list(run.glob("checkpoints/.tmp-*"))
    print(f"\nSIGKILL: {len(kills)} kills over {trials} trials, every resumed run identical to the reference:")
    print("\n".join(f"  killed at {k}" for k in kills))


@pytest.mark.slow
def test_sigterm_to_a_real_process_saves_exits_143_and_resume_repeats_the_run(tmp_path, digit_tasks, reference):
    # what a cluster scheduler does on preemption; checkpoint_every=0, so the signal's checkpoint is the only one
    run = tmp_path / "run"
    sets = [a for k, v in {**TINY, "checkpoint_every": "0"}.items() for a in ("--set", f"{k}={v}")]
    proc = subprocess.Popen(_cli("--task", "digit", "--tasks-dir", str(digit_tasks), "--output", str(run),
                                 "--max-steps", "4", *sets),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while proc.poll() is None and _last_step(run) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 143, stderr
    step = _last_step(run)
    assert 1 <= step < 4 and [p.name for p in list_checkpoints(run / "checkpoints")] == [f"step-{step:07d}"]
    assert f"mathrl: error: stopped by SIGTERM after step {step}; checkpoint saved in" in stderr
    assert f"--resume {run}" in stderr and "Traceback" not in stderr
    subprocess.run(_cli("--resume", str(run)), check=True, capture_output=True, timeout=300)
    assert comparable(run) == comparable(reference)
