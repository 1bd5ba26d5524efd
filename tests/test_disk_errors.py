"""Full disks and unwritable run directories (issue 17): a clear one-line error, never a
checkpoint that looks complete but is not, and a resume that repeats the uninterrupted run.

The disk "fills up" by patching the writers: `torch.save` in checkpoint.py writes half of the
file and raises ENOSPC, as a real full disk does; the metrics append writes half a line first.
(Running as root, a chmod'ed directory stays writable, so permissions are patched too.)
"""

from __future__ import annotations

import errno
import io
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import mathrl.checkpoint
import mathrl.results
from mathrl.checkpoint import CheckpointWriteError, list_checkpoints, load_latest, save_checkpoint
from mathrl.cli import app
from conftest import TINY, comparable, tiny_run

STEPS = 3


def cli_args(tasks: Path, run: Path) -> list[str]:
    return ["run", "--task", "digit", "--tasks-dir", str(tasks), "--output", str(run), "--max-steps", str(STEPS),
            "--quiet", *[a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, digit_tasks) -> Path:
    return tiny_run(digit_tasks, tmp_path_factory.mktemp("ref") / "run", steps=STEPS)


REAL_SAVE = torch.save


def full_disk_after(calls: int):
    """torch.save that works `calls` times, then writes half the file and raises ENOSPC."""
    count = [0]

    def save(obj, path):
        count[0] += 1
        if count[0] <= calls:
            return REAL_SAVE(obj, path)
        data = io.BytesIO()
        REAL_SAVE(obj, data)
        Path(path).write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")
    return save


def test_full_disk_while_saving_leaves_the_previous_checkpoints_intact(tmp_path, monkeypatch):
    ckpts = tmp_path / "checkpoints"
    save_checkpoint(ckpts, 1, {"step": 1, "w": torch.ones(1000)}, keep=1)
    monkeypatch.setattr(mathrl.checkpoint.torch, "save", full_disk_after(0))
    with pytest.raises(CheckpointWriteError, match="No space left on device.*newest intact checkpoint: step-0000001"):
        save_checkpoint(ckpts, 2, {"step": 2, "w": torch.ones(1000)}, keep=1)
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-0000001"]  # no temporary folder, no pruning
    assert load_latest(ckpts)[1]["step"] == 1


def test_disk_full_mid_run_then_resume_repeats_the_run(tmp_path, digit_tasks, reference, monkeypatch):
    run = tmp_path / "run"
    # the checkpoint of step 2 hits the full disk
    monkeypatch.setattr(mathrl.checkpoint.torch, "save", full_disk_after(1))
    result = CliRunner().invoke(app, cli_args(digit_tasks, run))
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("mathrl: error:")]
    assert len(errors) == 1 and "step-0000002" in errors[0] and "No space left on device" in errors[0], result.stderr
    assert f"--resume {run}" in errors[0] and "Traceback" not in result.output
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-0000001"]
    assert not list((run / "checkpoints").glob(".tmp-*"))
    monkeypatch.undo()  # space was freed
    assert CliRunner().invoke(app, ["run", "--resume", str(run), "--quiet"]).exit_code == 0
    assert comparable(run) == comparable(reference)


def test_disk_full_in_the_middle_of_a_metrics_line(tmp_path, digit_tasks, reference, monkeypatch):
    run = tmp_path / "run"
    real_open = open

    def filling_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        if str(path).endswith("metrics.jsonl") and "a" in mode and len(comparable(run)) >= 3:
            write = f.write

            def half(text):  # rows 0..2 fit, the fourth is cut in the middle
                write(text[: len(text) // 2])
                f.flush()
                raise OSError(errno.ENOSPC, "No space left on device")
            f.write = half
        return f

    monkeypatch.setattr(mathrl.results, "open", filling_open, raising=False)
    result = CliRunner().invoke(app, cli_args(digit_tasks, run))
    assert result.exit_code == 2 and "No space left on device" in result.stderr, result.output
    assert not (run / "metrics.jsonl").read_bytes().endswith(b"\n")  # the torn line is there
    monkeypatch.undo()
    assert CliRunner().invoke(app, ["run", "--resume", str(run), "--quiet"]).exit_code == 0
    assert comparable(run) == comparable(reference)


@pytest.mark.parametrize("how", ["parent is a file", "permission denied"])
def test_unwritable_output_directory_is_one_line(tmp_path, digit_tasks, monkeypatch, how):
    if how == "parent is a file":
        (tmp_path / "file").write_text("")
        run = tmp_path / "file" / "run"
        phrase = "Not a directory"
    else:
        run = tmp_path / "run"
        phrase = "Permission denied"

        def denied(self, config):
            raise PermissionError(errno.EACCES, "Permission denied", str(self.config_path))
        monkeypatch.setattr(mathrl.results.RunDir, "write_config", denied)
    result = CliRunner().invoke(app, cli_args(digit_tasks, run))
    errors = [line for line in result.stderr.splitlines() if line.startswith("mathrl: error:")]
    assert result.exit_code == 2 and len(errors) == 1 and phrase in errors[0], result.output
    assert "Traceback" not in result.output
    shutil.rmtree(tmp_path, ignore_errors=True)
