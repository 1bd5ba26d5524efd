"""What `--resume` may change, and what it does when nothing is left to resume from.

A resume continues the run exactly, or not at all. Every setting that changes training is
compared with the run's config.json; a difference is refused with one line (old -> new per
key), except the settings in EXEMPT, which cannot change the steps already logged.
`--allow-config-change` applies a difference from the resumed step on and records it in
config.json (`config_changes`: the step and each key's old and new value), which the run's
summary and `mathrl report` show. Settings the checkpoint itself depends on (FIXED) cannot
change even then.

When no usable checkpoint is left, a resume that would lose trained steps stops and names
`--restart`, which starts again from step 0 after moving the old results aside.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from mathrl.config import FIELDS, RunConfig
from mathrl.recipe import Recipe
from mathrl.results import RunDir, run_config_record, to_json

# Cannot change the steps already logged: the length of the run, the cadence of logging, evals
# and checkpoints, trackers, and the CPU thread count (a machine setting: a requeued job may land
# on a node with other cores). Later steps can still differ with another `threads` or eval
# cadence (README, "Reproducibility").
EXEMPT = ("max_steps", "eval_every", "samples_every", "checkpoint_every", "keep_checkpoints", "save_final",
          "report_to", "threads", "output")
# What the checkpoint is made of: its weights (model, LoRA), its prompt order (task, training
# problems, seed) and the algorithm whose state it holds.
FIXED = ("algo", "model", "lora_rank", "lora_alpha", "task", "task_config", "train_limit", "seed")
_DERIVED = ("batch_size",)  # follows from prompts_per_step and group_size, which are compared


class ConfigChanged(ValueError):
    """--resume with settings that differ from the run's config.json."""


class NothingToResume(ValueError):
    """--resume found no usable checkpoint and would lose trained steps."""


def config_changes(run: RunDir, cfg: RunConfig, allow: bool) -> dict[str, list]:
    """{key: [old, new]} for every setting `cfg` changes (EXEMPT aside). Raises ConfigChanged
    unless `allow`, and for FIXED keys or another model structure whatever `allow` says."""
    saved = run.read_config()
    # a field added after the run was made: the run had the behaviour of its default
    old = {**json.loads(to_json(RunConfig().to_dict())), **{k: v for k, v in saved.items() if k in FIELDS}}
    new = json.loads(to_json(cfg.to_dict()))
    changes = {k: [old.get(k), new.get(k)] for k in FIELDS
               if k not in EXEMPT and k not in _DERIVED and old.get(k) != new.get(k)}
    if not changes:
        return {}
    listed = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())
    fixed = [k for k in changes if k in FIXED]
    if not fixed and Recipe.from_config(cfg).learns_value != Recipe.from_config(_config(old)).learns_value:
        fixed = ["the value head (advantage)"]
    if fixed:
        raise ConfigChanged(f"--resume {run.path}: {listed}; {', '.join(fixed)} cannot change on resume, even with "
                            f"--allow-config-change (the checkpoint depends on it): start a new run, "
                            f"e.g. from {run.final_dir} with --model")
    if not allow:
        raise ConfigChanged(f"--resume {run.path}: settings differ from its config.json: {listed}; resume without "
                            f"them, or add --allow-config-change to apply them from the resumed step (recorded "
                            f"in config.json)")
    return changes


def _config(values: dict[str, Any]) -> RunConfig:
    from mathrl.config import build_config

    return build_config(values["algo"], None, {k: v for k, v in values.items() if k not in _DERIVED})


def record_changes(record: dict[str, Any], saved: dict[str, Any], changes: dict[str, list], step: int) -> dict:
    """The new config.json: `record` (the settings now in force) with the original environment
    and the history of changes, this one appended."""
    history = list(saved.get("config_changes", [])) + [{"step": step, "changes": changes}]
    return {**record, "environment": saved.get("environment", record.get("environment")), "config_changes": history}


def apply_optimizer_settings(optimizer, scheduler, cfg: RunConfig) -> None:
    """After loading a checkpoint's optimizer and scheduler (which restore the old lr and weight
    decay): put cfg's lr, weight_decay and warm-up in force from the current step."""
    scheduler.base_lrs = [cfg.lr] * len(optimizer.param_groups)
    for group, lr_lambda in zip(optimizer.param_groups, scheduler.lr_lambdas):
        group["initial_lr"], group["weight_decay"] = cfg.lr, cfg.weight_decay
        group["lr"] = cfg.lr * lr_lambda(scheduler.last_epoch)


def without_checkpoint(run: RunDir, restart: bool) -> Path | None:
    """--resume found no usable checkpoint. Nothing trained yet (no checkpoint folder, no step
    logged): the start repeats itself, returns None. Otherwise raise NothingToResume, or with
    `restart` return the folder the old results go to (moved there by set_aside)."""
    found = sorted(p.name for p in run.checkpoints_dir.glob("step-*")) if run.checkpoints_dir.is_dir() else []
    trained = sorted({r["step"] for r in run.read_metrics() if r["step"] > 0})
    if not found and not trained:
        print(f"mathrl: no checkpoint in {run.checkpoints_dir} and no step trained yet; starting from step 0",
              file=sys.stderr)
        return None
    what = (f"{len(found)} checkpoint folder(s) ({', '.join(found)}), none usable (reasons above)" if found
            else "no checkpoint")
    aside = run.path / f"discarded-{time.strftime('%Y%m%d-%H%M%S')}"
    if not restart:
        raise NothingToResume(f"--resume {run.path}: found {what}, while metrics.jsonl records {len(trained)} trained "
                              f"step(s); add --restart to train again from step 0 (the old metrics, evals, samples "
                              f"and checkpoints are moved to {run.path}/discarded-<time>/, not deleted)")
    return aside


def set_aside(run: RunDir, aside: Path) -> None:
    """Move what a restart would overwrite (metrics, evals, samples, checkpoints, final/) to `aside`."""
    aside.mkdir(parents=True, exist_ok=True)
    for path in (run.metrics_path, run.eval_dir, run.samples_dir, run.checkpoints_dir, run.final_dir):
        if path.exists():
            shutil.move(str(path), str(aside / path.name))
    print(f"mathrl: --restart: the previous results of {run.path} are in {aside}; starting from step 0",
          file=sys.stderr)


def apply_changes(state, changes: dict) -> None:
    """--allow-config-change: the changed settings in force from the resumed step on, and recorded."""
    if not changes:
        return
    apply_optimizer_settings(state.optimizer, state.scheduler, state.cfg)  # the checkpoint restored the old ones
    if state.accelerator.is_main_process:
        state.run.write_config(record_changes(run_config_record(state), state.run.read_config(), changes, state.step))
