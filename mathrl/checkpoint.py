"""Resumable checkpoints: everything that determines the rest of a run.

A checkpoint is a folder `checkpoints/step-<N>/` holding `state.pt` (model, value head,
reference if it drifted from the base, optimizer, scheduler, RNG states of python, numpy and
torch, the prompt sampler position, the compute meter, the step) and `COMPLETE`, written last.
It is written into a temporary folder and renamed into place, so a crash mid-write never
leaves something that looks complete. On load, folders without `COMPLETE` or whose state
fails to load are reported and skipped in favour of the previous one.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

COMPLETE = "COMPLETE"


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


def save_checkpoint(checkpoints_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Atomically write `state` as checkpoint `step`; keep only the newest `keep`."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / f"step-{step:07d}"
    tmp = checkpoints_dir / f".tmp-step-{step:07d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(state, tmp / "state.pt")
    (tmp / COMPLETE).write_text(str(step))
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(checkpoints_dir)
    for old in list_checkpoints(checkpoints_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not checkpoints_dir.is_dir():
        return []
    found = [p for p in checkpoints_dir.glob("step-*") if (p / COMPLETE).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def load_latest(checkpoints_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads; corrupt ones are reported and skipped."""
    for path in reversed(list_checkpoints(checkpoints_dir)):
        try:
            return path, torch.load(path / "state.pt", map_location="cpu", weights_only=False)
        except Exception as e:  # a torn or corrupt file: fall back to the previous checkpoint
            print(f"mathrl: checkpoint {path} is unreadable ({e.__class__.__name__}); trying the previous one",
                  file=sys.stderr)
    return None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
