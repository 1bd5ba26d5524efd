"""report_to: experiment trackers through accelerate, checked by reading TensorBoard's event
files back and comparing them with metrics.jsonl, value for value, also across a resume."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from pathlib import Path
from unittest import mock

import pytest
from tqdm import tqdm

from conftest import write_digit_task
from mathrl.config import ConfigError, build_config
from mathrl.tracking import ProgressBar, accelerator_kwargs, hparams, init_kwargs, scalars
from mathrl.train import train

needs_tensorboard = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                                       reason="needs tensorboard (pip install 'mathrl[tracking]')")

TINY = {"model": "tiny", "prompts_per_step": "2", "group_size": "4", "max_new_tokens": "8", "eval_limit": "2",
        "eval_every": "1", "lr": "1e-3", "samples_every": "1", "format_reward": "0.5", "threads": "1",
        "checkpoint_every": "1"}


@pytest.fixture(scope="module")
def digit_tasks(tmp_path_factory):
    return write_digit_task(tmp_path_factory.mktemp("tasks"))


def tiny_run(digit_tasks: Path, out: Path, steps: int, resume: bool = False, **extra) -> Path:
    overrides = {**TINY, "task": "digit", "tasks_dir": str(digit_tasks), "max_steps": str(steps),
                 "output": str(out), **extra}
    return train(build_config("grpo", None, overrides), progress=False, resume=out if resume else None)


def jsonl_series(run: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of metrics.jsonl, as a tracker should have received it."""
    series: dict[str, list[tuple[int, float]]] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        for k, v in scalars(row).items():
            series.setdefault(k, []).append((row["step"], v))
    return series


def tensorboard_series(run: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard" / "mathrl"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def assert_same_series(tb: dict, want: dict) -> None:
    assert sorted(tb) == sorted(want)
    for tag, points in want.items():
        got = tb[tag]
        assert [s for s, _ in got] == [s for s, _ in points], tag
        # event files hold float32: equal to within float32 rounding
        assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-30) for (_, a), (_, b) in zip(got, points)), tag


# ---- pure pieces --------------------------------------------------------------------------------
def test_a_tracker_gets_the_finite_numbers_of_a_row():
    row = {"step": 3, "reward/mean": 0.5, "tokens/generated": 12, "final": True, "optim/grad_norm": math.nan,
           "note": "x", "warn/truncated": 1.0}
    assert scalars(row) == {"reward/mean": 0.5, "tokens/generated": 12.0, "warn/truncated": 1.0}


def test_hparams_are_flat_scalars():
    flat = hparams({"lr": 1e-3, "task_config": {"a": 1}, "train_limit": None, "lora_alpha": None,
                    "resolved": {"x": 1}, "model": "tiny"})
    assert flat == {"lr": 1e-3, "task_config": '{"a": 1}', "train_limit": "null", "lora_alpha": "null",
                    "model": "tiny"}


def test_report_to_is_validated_and_none_adds_nothing_to_the_accelerator(tmp_path):
    with pytest.raises(ConfigError, match="report_to"):
        build_config("grpo", None, {"report_to": "tensorbord"})
    assert build_config("grpo", None, {"report_to": "tensorboard,wandb"}).report_to == "tensorboard,wandb"
    assert accelerator_kwargs("none", tmp_path) == {}


def test_an_uninstalled_tracker_is_refused_with_the_pip_command(tmp_path):
    # accelerate itself would drop it silently and the run would track nothing
    with mock.patch("accelerate.utils.is_wandb_available", return_value=False):
        with pytest.raises(ConfigError, match="pip install wandb"):
            accelerator_kwargs("wandb", tmp_path)


def test_wandb_is_offline_unless_wandb_mode_says_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    run = tmp_path / "grpo-digit"
    assert init_kwargs(run)["wandb"] == {"name": "grpo-digit", "dir": str(run), "mode": "offline"}
    monkeypatch.setenv("WANDB_MODE", "online")
    assert init_kwargs(run)["wandb"]["mode"] == "online"


# ---- end to end -----------------------------------------------------------------------------------
def test_the_default_writes_nothing_beyond_the_run_directory(tmp_path, digit_tasks):
    run = tiny_run(digit_tasks, tmp_path / "plain", steps=1)
    assert sorted(p.name for p in run.iterdir()) == [".lock", "checkpoints", "config.json", "eval", "final",
                                                      "metrics.jsonl", "samples"]  # .lock: run_lock.py


@needs_tensorboard
def test_tensorboard_holds_the_metrics_of_metrics_jsonl_also_after_a_resume(tmp_path, digit_tasks):
    run = tiny_run(digit_tasks, tmp_path / "tb", steps=2, report_to="tensorboard")
    first = jsonl_series(run)
    assert {"reward/mean", "loss/policy", "kl/mean", "eval/digit/acc", "tokens/generated"} <= set(first)
    assert [s for s, _ in first["reward/mean"]] == [1, 2]
    assert_same_series(tensorboard_series(run), first)
    # resume for one more step: metrics.jsonl drops the final eval of step 2 and goes on; the
    # event files must follow it, not keep the dropped row beside the new ones
    tiny_run(digit_tasks, run, steps=3, resume=True, report_to="tensorboard")
    again = jsonl_series(run)
    assert [s for s, _ in again["reward/mean"]] == [1, 2, 3]
    assert_same_series(tensorboard_series(run), again)
    assert (run / "tensorboard" / "mathrl").is_dir() and not (run / "wandb").exists()


def test_warnings_print_through_tqdm_while_the_progress_bar_is_open(monkeypatch):
    """A health warning written mid-bar would split the bar's line: tqdm.write clears it first."""
    written = []
    monkeypatch.setattr(tqdm, "write", classmethod(lambda cls, s, file=None, end="\n", nolock=False: written.append(s)))
    with ProgressBar(total=2, initial=0, enabled=True) as bar:
        logging.getLogger("mathrl.health").warning("mathrl: WARNING (step 1): something")
        bar.update({"reward/mean": 0.5})
    logging.getLogger("mathrl.health").warning("after the bar")  # handlers restored: not through tqdm
    assert written == ["mathrl: WARNING (step 1): something"]
