"""Shared fixtures: tiny model and tokenizer, and the location of the real datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """../shared/data beside the repo (or $MATHRL_DATA_DIR); None when absent."""
    for candidate in (os.environ.get("MATHRL_DATA_DIR"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def tiny():
    from mathrl.models import load_model

    return load_model("tiny", seed=0)
