"""GRPO learns: a real pretrained model on an easy task, a few minutes on CPU (slow).

The measured version with curves and seeds is benchmarks/bench_learning.py
(results/learning/); this test guards the same effect so that a change which silently breaks
learning (a sign flip, a masked-out loss, a zeroed reward) fails `make test-slow`.
"""

from __future__ import annotations

import json

import pytest
from conftest import needs_smollm2

from mathrl.config import build_config
from mathrl.train import train


@needs_smollm2
@pytest.mark.slow
def test_grpo_raises_reward_and_held_out_accuracy_on_easy_arithmetic(tmp_path):
    # the benchmark's setting, shorter: 8 steps of 4 prompts x 8 samples, 40 held-out problems
    overrides = {"model": "smollm2-135m", "task": "arithmetic-1shot", "max_steps": 8, "prompts_per_step": 4,
                 "group_size": 8, "max_new_tokens": 32, "lr": 2e-5, "eval_every": 0, "eval_limit": 40,
                 "eval_kl": False, "save_final": False, "samples_every": 0, "output": str(tmp_path / "run")}
    run_dir = train(build_config("grpo", None, overrides), progress=False)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rewards = [r["reward/mean"] for r in rows if "reward/mean" in r]
    accs = [r["eval/arithmetic-1shot/acc"] for r in rows if "eval/arithmetic-1shot/acc" in r]
    # step 1 samples the untrained policy, which rarely writes `#### N` (bench: reward 0.2-0.3)
    assert sum(rewards[-3:]) / 3 >= rewards[0] + 0.2, rewards
    assert accs[-1] >= accs[0] + 0.3, accs  # greedy, held out: start and end of the run
