"""Full disks and unwritable run directories (issue 17): a clear one-line error, never a
checkpoint that looks complete but is not, and a resume that repeats the uninterrupted run.

The disk "fills up" by patching the writers: `torch.save` in checkpoint.py writes half of the
file and raises ENOSPC, as a real full disk does; the metrics append writes half a line first.
(Running as root, a chmod'ed directory stays writable, so permissions are patched too.)
"""

from __future__ import annotations

import errno
import io
import os
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import mathrl.checkpoint
import mathrl.results
from mathrl.checkpoint import WriteError, list_checkpoints, load_latest, save_checkpoint
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
    with pytest.raises(WriteError, match="No space left on device.*newest intact checkpoint: step-0000001"):
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
    assert result.exit_code == 2 and f"cannot write {run}/metrics.jsonl (No space left on device)" in result.stderr, \
        result.output
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


# ---- what torch and safetensors raise on a full disk (issue 26) --------------------------------
# Measured on a full tmpfs: torch raises RuntimeError('[enforce fail at inline_container.cc:672] .
# unexpected pos 576 vs 534'), without an errno; safetensors raises SafetensorError('Error while
# serializing: I/O error: No space left on device (os error 28)'). Both leave a partial file.
# (Not /dev/full: safetensors replaces the target by a rename, which turns /dev/full into a file.)

def half_written(save, path, error: Exception):
    data = io.BytesIO()
    save(data)
    Path(path).write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    raise error


def torch_save_full(obj, path):
    half_written(lambda f: REAL_SAVE(obj, f), path, RuntimeError("[enforce fail at inline_container.cc:672] . "
                                                                 "unexpected pos 576 vs 534"))


def safetensors_save_full(tensors, path, metadata=None):
    from safetensors import SafetensorError
    from safetensors.torch import save

    half_written(lambda f: f.write(save(tensors, metadata=metadata)), path,
                 SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"))


def no_free_space(monkeypatch):
    """What shutil.disk_usage says on a full disk (torch's error has no errno to say it)."""
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 30, 1 << 30, 0))


@pytest.mark.parametrize("where", ["checkpoint", "final"])
def test_a_full_disk_in_torch_or_safetensors_is_one_line_and_leaves_no_half_written_folder(
        tmp_path, digit_tasks, monkeypatch, where):
    import transformers.modeling_utils

    run = tmp_path / "run"
    if where == "checkpoint":
        no_free_space(monkeypatch)
        monkeypatch.setattr(mathrl.checkpoint.torch, "save", torch_save_full)
        expected = f"could not write checkpoint {run}/checkpoints/step-0000001 (No space left on device); " \
                   "newest intact checkpoint: none"
    else:
        monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", safetensors_save_full)
        expected = f"could not write the final model folder {run}/final (No space left on device)"
    result = CliRunner().invoke(app, cli_args(digit_tasks, run) + ["--set", "save_final=true"])
    errors = [line for line in result.stderr.splitlines() if line.startswith("mathrl: error:")]
    assert result.exit_code == 2 and len(errors) == 1 and expected in errors[0], result.output
    assert f"--resume {run}" in errors[0] and "Traceback" not in result.output
    assert not list(run.rglob(".tmp-*")) and not (run / "final").exists()
    if where == "final":  # the run itself is complete: a resume only writes final/ again
        monkeypatch.undo()
        assert CliRunner().invoke(app, ["run", "--resume", str(run), "--quiet"]).exit_code == 0
        assert (run / "final" / "model.safetensors").is_file() and not list(run.rglob(".tmp-*"))


class FullDiskOs:
    """`os` for mathrl.results, whose files opened under `folder` (samples/, eval/) fill the
    disk halfway through their first write, as ENOSPC does."""

    def __init__(self, folder: str):
        self.folder = folder

    def __getattr__(self, name):
        return getattr(os, name)

    def fdopen(self, fd, *args, **kwargs):
        f = os.fdopen(fd, *args, **kwargs)
        if f"/{self.folder}/" in os.readlink(f"/proc/self/fd/{fd}"):
            write = f.write

            def half(text):
                write(text[: len(text) // 2])
                f.flush()
                raise OSError(errno.ENOSPC, "No space left on device")
            f.write = half
        return f


@pytest.mark.parametrize("folder", ["samples", "eval", "report"])
def test_a_full_disk_while_writing_samples_evals_or_a_report_is_one_line(tmp_path, digit_tasks, reference,
                                                                         monkeypatch, folder):
    run = tmp_path / "run"
    if folder == "report":
        real = Path.write_text

        def full(self, *args, **kwargs):
            if self.parent.name == "report":
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(self, *args, **kwargs)
        monkeypatch.setattr(Path, "write_text", full)
        result = CliRunner().invoke(app, ["report", str(reference), "--output", str(tmp_path / "report")])
    else:
        monkeypatch.setattr(mathrl.results, "os", FullDiskOs(folder))
        result = CliRunner().invoke(app, cli_args(digit_tasks, run))
        assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]  # the half-written file is gone
    errors = [line for line in result.stderr.splitlines() if line.startswith("mathrl: error:")]
    named = {"samples": f"{run}/samples/eval-step-000000.jsonl", "eval": f"{run}/eval/step-000000.json",
             "report": "into --output"}[folder]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert f"cannot write {named} (No space left on device); free space" in errors[0], errors[0]
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_a_real_full_tmpfs_then_resume_after_growing_it(tmp_path, digit_tasks, reference):
    """A 2.5 MiB tmpfs (in a mount namespace of its own: needs `unshare -rm` and mount rights)
    fills at the third checkpoint (about 1 MB each); grown to 64 MiB, --resume finishes the run
    exactly as the uninterrupted one."""
    import shlex
    import subprocess
    import sys

    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m none {tmp_path}"],
                           capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode:
        pytest.skip("cannot mount a tmpfs here (unshare -rm, mount)")
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir(), out.mkdir()
    run = mnt / "run"
    mathrl = f"OMP_NUM_THREADS=1 {shlex.quote(sys.executable)} -m mathrl"
    script = f"""
        mount -t tmpfs -o size=2560k none {mnt}
        {mathrl} {shlex.join(cli_args(digit_tasks, run))} 2> {out}/first.err; echo $? > {out}/first.rc
        ls -A {run} {run}/checkpoints > {out}/left.txt 2>&1
        mount -o remount,size=64m {mnt}
        {mathrl} run --resume {run} --quiet 2> {out}/second.err; echo $? > {out}/second.rc
        cp {run}/metrics.jsonl {out}/metrics.jsonl
    """
    subprocess.run(["unshare", "-rm", "sh", "-c", script], check=True, timeout=600)
    first = (out / "first.err").read_text()
    errors = [line for line in first.splitlines() if line.startswith("mathrl: error:")]
    assert (out / "first.rc").read_text().strip() == "2" and len(errors) == 1, first
    assert "No space left on device" in errors[0] and "Traceback" not in first
    assert ".tmp-" not in (out / "left.txt").read_text()
    assert (out / "second.rc").read_text().strip() == "0", (out / "second.err").read_text()
    assert comparable(out) == comparable(reference)
    print(f"\nreal tmpfs: {errors[0]}")
