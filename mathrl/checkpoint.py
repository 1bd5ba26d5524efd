"""Resumable checkpoints: everything that determines the rest of a run.

A checkpoint is a folder `checkpoints/step-<N>/` holding `state.pt` (model, value head,
reference if it drifted from the base, optimizer, scheduler, RNG states of python, numpy and
torch, the prompt sampler position, the compute meter, the step) and `COMPLETE`, written last
(JSON: the step, and the size and hash of every file). It is written into a temporary folder
and renamed into place (final/ too, through `write_folder`), so a crash or a full disk never
leaves something that looks complete. On load, a folder is validated (marker present, every
file of the recorded size and hash, state.pt holds the recorded step); one that fails is
reported and skipped in favour of the previous one.

SIGINT (Ctrl-C) and SIGTERM (preemption) during training are deferred by `DeferredInterrupt`:
the step in flight finishes, the trainer saves a checkpoint and stops with exit code 130 / 143.
Stopping mid-step instead would leave the model, optimizer and RNG streams halfway through a
step, a state no checkpoint can name.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import torch

from mathrl import tracking
from mathrl.distributed import (full_model_state, full_optimizer_state, is_sharded, load_full_model_state,
                                load_full_optimizer_state)
from mathrl.resume import set_aside, without_checkpoint

COMPLETE = "COMPLETE"
_TMP_PREFIX = ".tmp-"  # + the folder name: .tmp-step-0000003-<pid>, .tmp-final-<pid>
_HASH_CHUNK = 16 << 20
_FULL_BELOW = 1 << 20  # free bytes under which a write failure without an errno is a full disk


def rng_state() -> dict[str, Any]:
    import numpy as np

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class WriteError(OSError):
    """A checkpoint or final/ could not be written (full disk, quota, permissions), whatever the
    library raised (torch: RuntimeError, safetensors: SafetensorError). Nothing half-written is
    left under the folder's name, and the previous checkpoints are untouched."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def write_folder(path: Path, write: Callable[[Path], None], what: str) -> None:
    """Write a folder as a whole: `write(tmp)` fills a temporary folder beside `path`, which
    is fsynced and renamed into place; a failure removes it (freeing the space it took)."""
    tmp = path.parent / f"{_TMP_PREFIX}{path.name}-{os.getpid()}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f"{_TMP_PREFIX}*"):  # left by a process killed mid-write
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
        write(tmp)
        for f in tmp.rglob("*"):
            if f.is_file():
                _fsync_file(f)
        _fsync_dir(tmp)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        failure = write_failure(e, path.parent)
        if failure is None:  # not a write failure: a bug or an interrupt, raised as it is
            raise
        raise WriteError(failure[0], f"could not write {what} {path} ({failure[1]})") from e
    if path.exists():  # a checkpoint that failed validation, or the final/ of an earlier finish
        _remove(path)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def write_failure(e: BaseException, folder: Path) -> tuple[int, str] | None:
    """(errno, reason) of a failed write, or None if `e` is no write failure. torch reports a
    full disk as RuntimeError('[enforce fail at inline_container.cc] unexpected pos ...') and
    safetensors as SafetensorError('... I/O error: No space left on device (os error 28)')."""
    if isinstance(e, OSError):
        return e.errno or errno.EIO, e.strerror or str(e)
    text = str(e)
    if not (isinstance(e, RuntimeError) or type(e).__name__ == "SafetensorError"):
        return None
    code = re.search(r"os error (\d+)", text)
    if code:
        return int(code.group(1)), os.strerror(int(code.group(1)))
    if not re.search(r"inline_container|unexpected pos|I/O error|write", text):
        return None
    try:
        full = shutil.disk_usage(folder).free < _FULL_BELOW
    except OSError:
        full = False
    return (errno.ENOSPC, os.strerror(errno.ENOSPC)) if full else (errno.EIO, f"write failed: {text.strip()}")


def save_checkpoint(checkpoints_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Atomically write `state` as checkpoint `step`; keep only the newest `keep`.

    The COMPLETE marker records the size and hash (file_hash) of every file, checked on load. Older
    checkpoints are pruned only once the new one is complete; a failed write (e.g. ENOSPC)
    removes its temporary folder and raises WriteError naming the newest intact checkpoint."""
    final = checkpoint_path(checkpoints_dir, step)

    def write(tmp: Path) -> None:
        torch.save(state, tmp / "state.pt")
        files = {f.name: {"bytes": f.stat().st_size, "hash": file_hash(f)} for f in tmp.iterdir()}
        (tmp / COMPLETE).write_text(json.dumps({"step": step, "files": files}))

    try:
        write_folder(final, write, "checkpoint")
    except WriteError as e:
        previous = list_checkpoints(checkpoints_dir)
        raise WriteError(e.errno, f"{e}; newest intact checkpoint: {previous[-1].name if previous else 'none'}") from e
    for old in list_checkpoints(checkpoints_dir)[:-keep]:
        _remove(old)
    return final


def file_hash(path: Path) -> str:
    """'sha256x16MiB:<hex>': SHA-256 over the SHA-256 digests of the file's 16 MiB chunks (a hash
    list), hashed in parallel threads (hashlib releases the GIL): one SHA-256 stream over a 1.6 GB
    SmolLM2 checkpoint is 0.9 s of one core, split here over up to 8 (results/reliability)."""
    with open(path, "rb") as f:
        fd, size = f.fileno(), os.fstat(f.fileno()).st_size
        chunks = range(0, max(size, 1), _HASH_CHUNK)
        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            digests = pool.map(lambda start: hashlib.sha256(os.pread(fd, _HASH_CHUNK, start)).digest(), chunks)
            return f"sha256x16MiB:{hashlib.sha256(b''.join(digests)).hexdigest()}"


def checkpoint_path(checkpoints_dir: Path, step: int) -> Path:
    return checkpoints_dir / f"step-{step:07d}"


def _remove(path: Path) -> None:
    # The marker goes first: a deletion cut short must not leave a folder that looks complete.
    (path / COMPLETE).unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not checkpoints_dir.is_dir():
        return []
    found = [p for p in checkpoints_dir.glob("step-*") if (p / COMPLETE).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def load_latest(checkpoints_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that passes validation; others are reported and skipped."""
    for path in reversed(list_checkpoints(checkpoints_dir)):
        try:
            return path, load_checkpoint(path)
        except Exception as e:  # a torn or corrupt file: fall back to the previous checkpoint
            print(f"mathrl: checkpoint {path} is unusable ({e.__class__.__name__}: {e}); trying the previous one",
                  file=sys.stderr)
    return None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The state of one checkpoint folder; raises ValueError if a file does not match the size
    or hash its marker recorded, or the state does not hold the recorded step."""
    marker = json.loads((path / COMPLETE).read_text())
    if isinstance(marker, int):  # checkpoints written before the marker held the size
        marker = {"step": marker}
    files = marker.get("files") or ({"state.pt": {"bytes": marker["bytes"]}} if "bytes" in marker else {})
    for name, expected in files.items():
        size = (path / name).stat().st_size
        if size != expected["bytes"]:
            raise ValueError(f"{name} has {size} bytes, {expected['bytes']} were written")
        if "hash" in expected and file_hash(path / name) != expected["hash"]:
            raise ValueError(f"{name} does not match the hash recorded when it was written (corrupted on disk)")
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or state.get("step") != marker["step"]:
        raise ValueError(f"state.pt does not hold step {marker['step']}")
    return state


class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal; `exit_code` is what a shell reports for it (128 + signal
    number: 130 for SIGINT, 143 for SIGTERM), so schedulers and scripts can tell it apart."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


_NAMES = {signal.SIGINT: ("interrupted", "Ctrl-C again"), signal.SIGTERM: ("stopped by SIGTERM", "a second SIGTERM")}


def raise_interrupted(signum, frame) -> None:
    """Signal handler outside training (start-up, the final eval): stop at once, as Ctrl-C does
    by default, with the signal's exit code."""
    raise Interrupted(_NAMES[signum][0], signum)


class DeferredInterrupt:
    """Within `with DeferredInterrupt() as stop:`, a first SIGINT or SIGTERM only sets
    `stop.requested` (the caller checks it between steps, saves a checkpoint and raises
    `stop.stop(...)`); a second one raises Interrupted at once, without a checkpoint.

    SIGTERM is what a cluster scheduler or `docker stop` sends before killing a job: it gets
    the treatment of Ctrl-C, so a preempted run keeps every completed step even with
    checkpoint_every 0. The step in flight must finish within the scheduler's grace period
    (Slurm: KillWait, 30 s by default, or `--signal=TERM@<seconds>` before the time limit;
    Kubernetes: terminationGracePeriodSeconds, 30 s by default).

    Only the main thread can own signal handlers; elsewhere the signals keep their meaning."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int = signal.SIGINT
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "DeferredInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in _NAMES}
        return self

    def _handle(self, signum, frame) -> None:
        name, again = _NAMES[signum]
        if self.requested:
            raise Interrupted(f"{name} again: stopped at once, without saving this step", signum)
        self.requested, self.signum = True, signum
        print(f"\nmathrl: {name}: finishing this step, then saving a checkpoint "
              f"({again} to stop at once, without one)", file=sys.stderr, flush=True)

    def stop(self, message: str) -> Interrupted:
        """The exception that ends training after the first signal: '<what happened> <message>'."""
        return Interrupted(f"{_NAMES[self.signum][0]} {message}", self.signum)

    def __exit__(self, *exc) -> None:
        for s, previous in self._previous.items():  # None: the previous handler was not set from Python
            signal.signal(s, signal.SIG_DFL if previous is None else previous)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- a run's checkpoints (`state` is a run_state.RunState) ------------------------------------
class RunAborted(RuntimeError):
    """The run stopped on purpose (divergence); its state was saved first."""


def checkpoint_state(state) -> dict[str, Any]:
    """What a checkpoint holds (whole tensors also under FSDP: a collective there)."""
    unwrap = state.accelerator.unwrap_model
    return {
        "step": state.step, "model": full_model_state(state.accelerator, state.model),
        "value_head": unwrap(state.value_head).state_dict() if state.value_head is not None else None,
        "ref_model": (state.ref_model.state_dict() if state.ref_model is not None and state.cfg.ref_reset_every
                      else None),
        "optimizer": full_optimizer_state(state.accelerator, state.model, state.optimizer),
        "scheduler": state.scheduler.state_dict(),
        "sampler": state.sampler.index.state_dict(), "meter": state.meter.state_dict(),
        "generator": state.generator.get_state(), "rng": rng_state(),
        "consecutive_skips": state.consecutive_skips, "policy_is_reference": state.policy_is_reference,
    }


def checkpoint_now(state) -> Path | None:
    state.saved_step = state.step
    if not state.accelerator.is_main_process:
        if is_sharded(state.accelerator):
            checkpoint_state(state)  # this rank's part of the gathers; the main process writes
        return None
    return save_checkpoint(state.run.checkpoints_dir, state.step, checkpoint_state(state), state.cfg.keep_checkpoints)


def maybe_checkpoint(state) -> None:
    every = state.cfg.checkpoint_every
    if every and state.step % every == 0 and state.step < state.cfg.max_steps:
        checkpoint_now(state)


def stop_if_interrupted(state, interrupt: DeferredInterrupt) -> None:
    """Between steps: after Ctrl-C or SIGTERM, checkpoint the last completed step and stop.
    Under several processes a signal that reached any rank stops every rank at the same step."""
    requested = interrupt.requested
    if state.accelerator.num_processes > 1:  # every rank reaches this line once per step
        requested = bool(state.accelerator.reduce(torch.tensor(float(requested), device=state.device), "sum") > 0)
    if not requested:
        return
    if state.step == 0:  # nothing trained yet: a resume restarts from the beginning
        raise interrupt.stop("before the first step; nothing to save")
    if state.saved_step != state.step:
        checkpoint_now(state)
    path = checkpoint_path(state.run.checkpoints_dir, state.step)
    tracking.end(state.accelerator)
    raise interrupt.stop(f"after step {state.step}; checkpoint saved in {path}")


def restore(state, restart: bool = False) -> None:
    """The run's state from its last complete checkpoint (`restart`: --resume --restart, resume.py)."""
    found = load_latest(state.run.checkpoints_dir)
    if found is None:
        aside = without_checkpoint(state.run, restart)  # stops unless nothing trained is lost (resume.py)
        state.accelerator.wait_for_everyone()  # every rank decided before the main process moves files
        if state.accelerator.is_main_process:
            if aside:
                set_aside(state.run, aside)
            else:
                state.run.rewind_metrics(-1)  # the step-0 eval is redone
        return
    _, saved = found
    unwrap = state.accelerator.unwrap_model
    load_full_model_state(state.accelerator, state.model, saved["model"])
    if state.value_head is not None:
        unwrap(state.value_head).load_state_dict(saved["value_head"])
    if saved["ref_model"] is not None and state.ref_model is not None:
        state.ref_model.load_state_dict(saved["ref_model"])
    load_full_optimizer_state(state.accelerator, state.model, state.optimizer, saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    state.sampler.index.load_state_dict(saved["sampler"])
    state.meter.load_state_dict(saved["meter"])
    state.generator.set_state(saved["generator"])
    set_rng_state(saved["rng"])  # the main process's: split the streams again, as at the start
    if state.accelerator.process_index:
        from accelerate.utils import set_seed

        set_seed(state.cfg.seed + 1_000_003 * state.accelerator.process_index + saved["step"])
    state.step, state.consecutive_skips = saved["step"], saved["consecutive_skips"]
    # checkpoints written before this flag existed: the policy moved once the optimizer stepped
    state.policy_is_reference = saved.get("policy_is_reference", not state.optimizer.state)
    state.run.rewind_metrics(state.step)  # steps logged after this checkpoint are redone


def abort_if_diverged(state, metrics: dict[str, Any], max_skips: int) -> None:
    """After `max_skips` steps in a row with a non-finite loss or gradient: save, then stop."""
    skipped = metrics.get("optim/skipped_steps", 0.0)
    state.consecutive_skips = state.consecutive_skips + 1 if skipped else 0
    if state.consecutive_skips >= max_skips:
        path = checkpoint_now(state)
        tracking.end(state.accelerator)
        raise RunAborted(f"{max_skips} steps in a row had a non-finite loss or gradient; "
                         f"state saved to {path}. Lower lr or check the reward hook.")
