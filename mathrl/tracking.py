"""Experiment trackers (TensorBoard, Weights & Biases, trackio) through accelerate's own
tracking API: `Accelerator(log_with=...)`, `init_trackers`, `log`, `end_training`.

metrics.jsonl stays the run's record; a tracker is a view of it. Every tracker receives the
same rows, each at its `step`, holding the finite numbers of the row (the keys whose value
metrics.jsonl writes as a number; `step` itself and flags such as `final` are left out).
That makes resume simple and exact: metrics.jsonl is rewound to the checkpoint, so on resume
the TensorBoard folder is rebuilt from the rewound file instead of being appended to (steps
logged after the checkpoint would otherwise appear twice).

Offline by default: W&B runs in offline mode (files under <run>/wandb/, `wandb sync` them
later) unless WANDB_MODE says otherwise; trackio is local-first and stores in its own cache.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from mathrl.config import ConfigError

PROJECT = "mathrl"  # the W&B / trackio project; TensorBoard's event folder name
# tracker -> (accelerate's availability check, the pip package that provides it)
TRACKERS = {"tensorboard": ("is_tensorboard_available", "tensorboard"),
            "wandb": ("is_wandb_available", "wandb"),
            "trackio": ("is_trackio_available", "trackio")}


def trackers(report_to: str) -> list[str]:
    """The tracker names of a `report_to` value (validated by RunConfig.finalize)."""
    return [n.strip() for n in report_to.split(",") if n.strip() not in ("", "none")]


def tensorboard_dir(run_path: Path) -> Path:
    return Path(run_path) / "tensorboard"


def accelerator_kwargs(report_to: str, run_path: Path) -> dict[str, Any]:
    """Keyword arguments for Accelerator(): nothing at all for report_to=none."""
    names = trackers(report_to)
    if not names:
        return {}
    import accelerate.utils as au
    from accelerate.utils import ProjectConfiguration

    # accelerate drops an uninstalled tracker silently (a debug log line): refuse instead
    missing = [TRACKERS[n][1] for n in names if not getattr(au, TRACKERS[n][0])()]
    if missing:
        raise ConfigError(f"report_to needs {', '.join(missing)}: pip install {' '.join(missing)} "
                          f"(or pip install 'mathrl[tracking]' for tensorboard)")
    return {"log_with": names, "project_config": ProjectConfiguration(
        project_dir=str(run_path), logging_dir=str(tensorboard_dir(run_path)))}


def init_kwargs(run_path: Path) -> dict[str, dict[str, Any]]:
    """Per-tracker arguments of init_trackers: the run directory's name names the run."""
    name = Path(run_path).name
    return {"wandb": {"name": name, "dir": str(run_path), "mode": os.environ.get("WANDB_MODE", "offline")},
            "trackio": {"name": name},
            "tensorboard": {"flush_secs": 30}}


def hparams(config: dict[str, Any]) -> dict[str, Any]:
    """The run config as flat scalars (TensorBoard's add_hparams rejects None, dicts, lists)."""
    import json

    return {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v, default=str)
            for k, v in config.items() if k not in ("resolved", "environment", "preset_doc")}


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """The values of a metrics row a tracker gets: finite numbers, not `step`, not flags."""
    return {k: float(v) for k, v in row.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def start(accelerator, report_to: str, run_path: Path, config: dict[str, Any],
          history: list[dict[str, Any]] | None = None) -> None:
    """init_trackers; on resume, `history` is the rewound metrics.jsonl, replayed into them."""
    if not trackers(report_to):
        return
    if accelerator.is_main_process and history is not None:
        shutil.rmtree(tensorboard_dir(run_path), ignore_errors=True)  # rebuilt from metrics.jsonl below
    accelerator.init_trackers(PROJECT, config=hparams(config), init_kwargs=init_kwargs(run_path))
    for row in history or ():
        log(accelerator, row)


def log(accelerator, row: dict[str, Any]) -> None:
    if accelerator.trackers:  # empty for report_to=none; accelerate writes on the main process only
        accelerator.log(scalars(row), step=int(row["step"]))


def end(accelerator) -> None:
    """Flush and close the trackers; idempotent. Not accelerator.end_training(): that also
    destroys the process group, which the end of the run still needs."""
    for tracker in accelerator.trackers:
        tracker.finish()  # on the main process only (accelerate's decorator)
    accelerator.trackers.clear()


class ProgressBar:
    """tqdm over steps, showing reward, eval accuracy and the estimated time left. While it is
    open, mathrl's log records (health warnings) go through tqdm.write, so that they print on
    their own lines instead of splitting the bar's."""

    def __init__(self, total: int, initial: int, enabled: bool):
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self.bar = tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True,
                        file=sys.stderr)
        self.acc: float | None = None
        self.redirect = logging_redirect_tqdm([logging.getLogger("mathrl")])

    def __enter__(self) -> "ProgressBar":
        self.redirect.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.redirect.__exit__(*exc)
        self.bar.close()

    def update(self, metrics: dict[str, Any]) -> None:
        acc = [v for k, v in metrics.items() if k.startswith("eval/") and k.endswith("/acc")]
        self.acc = acc[0] if acc else self.acc
        post = {"reward": f"{metrics.get('reward/mean', float('nan')):.3f}",
                "len": f"{metrics.get('rollout/len_mean', float('nan')):.0f}"}
        if self.acc is not None:
            post["eval_acc"] = f"{self.acc:.3f}"
        self.bar.set_postfix(post)
        self.bar.update(1)
