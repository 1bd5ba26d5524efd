"""Metrics every trainer logs (kl/old_new, clip fractions by side, entropy) and target_kl early
stopping of the mu epochs (cleanrl's practice), through metrics.jsonl and --help-config."""

import json

import pytest

from conftest import write_digit_task
from mathrl.config import ConfigError, build_config, describe_fields
from mathrl.train import train

NEW = ("kl/old_new", "loss/clip_frac_low", "loss/clip_frac_high", "entropy/mean", "optim/epochs")


def run(tmp_path, name, algo="grpo", **extra):
    tasks = write_digit_task(tmp_path)
    cfg = build_config(algo, None, {"model": "tiny", "task": "digit", "tasks_dir": str(tasks), "max_steps": "2",
                                    "prompts_per_step": "2", "group_size": "4", "max_new_tokens": "8", "lr": "1e-2",
                                    "eval_limit": "2", "eval_every": "0", "format_reward": "0.5", "samples_every": "0",
                                    "save_final": "false", "output": str(tmp_path / name), **extra})
    rows = [json.loads(x) for x in (train(cfg, progress=False) / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss/policy" in r]


def test_every_trainer_logs_old_new_kl_clip_sides_and_entropy(tmp_path):
    rows = run(tmp_path, "grpo", ppo_epochs="3", minibatches="2")
    assert len(rows) == 2 and all(k in r for r in rows for k in NEW)
    assert all(r["optim/epochs"] == 3 for r in rows)
    # after the first of 6 minibatch steps the policy has moved: (r - 1) - log r > 0 on average
    assert all(r["kl/old_new"] > 0 and r["entropy/mean"] > 0 for r in rows)
    assert all(r["loss/clip_frac"] == pytest.approx(r["loss/clip_frac_low"] + r["loss/clip_frac_high"]) for r in rows)
    on_policy = run(tmp_path, "reinforce", "reinforce")  # one update per rollout: pi_old is the policy
    assert all(r["kl/old_new"] == 0 and r["loss/clip_frac"] == 0 and "entropy/mean" in r for r in on_policy)


def test_target_kl_stops_the_epochs_and_the_compute_count_follows(tmp_path):
    full = run(tmp_path, "full", ppo_epochs="4", minibatches="2")
    stopped = run(tmp_path, "stopped", ppo_epochs="4", minibatches="2", target_kl="1e-12")
    assert all(r["optim/epochs"] == 4 for r in full) and all(r["optim/epochs"] == 1 for r in stopped)
    assert all(r["optim/steps"] == 2 for r in stopped)  # the epoch's two minibatches, then stop
    # tokens/trained counts the epochs that ran: a quarter of the full run's per-step count
    per_epoch = [r["tokens/trained"] / 4 for r in full]
    assert [r["tokens/trained"] for r in stopped][0] == pytest.approx(per_epoch[0])


def test_help_config_documents_target_kl_and_the_new_metrics():
    text = describe_fields()
    for word in ("target_kl", "kl/old_new", "loss/clip_frac_low", "entropy/mean"):
        assert word in text, word
    with pytest.raises(ConfigError, match="target_kl"):
        build_config("grpo", None, {"target_kl": "-0.1"})
