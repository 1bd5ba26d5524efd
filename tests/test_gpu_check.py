"""scripts/gpu_check.sh runs on a GPU machine that has no datasets, gguf, reasoning-gym or trl.
Here it runs on CPU, on a tiny model of the same architecture (Qwen2), with those packages made
unimportable, through the shell script itself, so that neither can rot unnoticed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the packages the GPU machine lacks: importing any of them raises ImportError in the check
BLOCK = "import sys\nfor m in ('datasets', 'gguf', 'reasoning_gym', 'trl'):\n    sys.modules[m] = None\n"


def test_the_gpu_check_runs_on_cpu_without_the_offline_extras(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCK)  # runs at interpreter start-up
    # the interpreter running the tests (the script would otherwise take .venv/bin/python or python3)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--device", "cpu", "--shape", "tiny",
                           "--steps", "2", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    checks = summary["checks"]
    assert sorted(checks) == ["final", "grpo", "lora", "resume"] and all(c["ok"] for c in checks.values())
    assert summary["shape"] == "tiny" and checks["final"]["class"] == "Qwen2ForCausalLM"
    assert checks["grpo"]["steps"] == 2 and checks["resume"]["steps"] == 3
    assert 0 < checks["grpo"]["s_per_completion_token"] < 10
    # the run really trained in bf16 (the dtype the GPU check exists for)
    config = json.loads((tmp_path / "work" / "grpo" / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["device"] == "cpu"


def test_the_blocked_packages_are_really_unimportable(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCK)
    code = "import importlib\nfor m in ('datasets', 'gguf', 'reasoning_gym', 'trl'):\n" \
           "    try:\n        importlib.import_module(m)\n    except ImportError:\n        print(m)\n"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(tmp_path)},
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["datasets", "gguf", "reasoning_gym", "trl"]
