#!/usr/bin/env bash
# One command on a GPU machine: bf16 GRPO steps on a random Qwen2.5-0.5B-shaped model, eval,
# checkpoint and resume, and LoRA; writes results/gpu/summary.json.
# Needs only torch, transformers, accelerate, peft, sympy, typer, pyyaml, safetensors, tqdm (no
# network, no datasets / gguf / reasoning-gym). Under 8 minutes on one GPU. Extra arguments go to
# benchmarks/gpu_check.py (e.g. --steps 8, --device cpu --shape tiny to check the code paths on CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
# the repository itself, importable without installing it (the GPU machine gets a bare checkout)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" benchmarks/gpu_check.py "$@"
