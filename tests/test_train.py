"""End-to-end: a real training run on the tiny model, checked through its run directory."""

import json

import pytest
import torch

from conftest import metric_rows
from mathrl.config import build_config
from mathrl.presets import PRESETS
from mathrl.train import train

# evals and checkpoints every other step, samples every step: the run directory is complete
E2E = {"model": "tiny", "prompts_per_step": "2", "group_size": "4", "max_new_tokens": "12",
       "eval_limit": "4", "eval_every": "2", "lr": "1e-3", "samples_every": "1", "checkpoint_every": "2",
       "format_reward": "0.5"}


def run(tmp_path, digit_tasks, algo="grpo", steps=3, **extra):
    overrides = {**E2E, "task": "digit", "tasks_dir": str(digit_tasks), "max_steps": str(steps),
                 "output": str(tmp_path / algo), **extra}
    return train(build_config(algo, None, overrides), progress=False)


def test_grpo_run_writes_the_run_directory_and_changes_every_parameter(tmp_path, digit_tasks):
    from transformers import AutoModelForCausalLM

    from mathrl.models import load_model

    run_dir = run(tmp_path, digit_tasks)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["algo"] == "grpo" and config["resolved"]["task"] == "digit@1"
    assert "torch" in json.dumps(config["environment"])
    rows = metric_rows(run_dir)
    steps = [r for r in rows if "reward/mean" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    for key in ["reward/mean", "reward/std", "loss/policy", "kl/mean", "adv/zero_std_frac", "rollout/len_mean",
                "rollout/truncated_frac", "time/step_s", "tokens/generated", "tokens/trained", "flops/cumulative",
                "optim/grad_norm"]:
        assert all(key in r for r in steps), key
    assert any(r["reward/std"] > 0 for r in steps)  # a real learning signal reached the update
    assert any("eval/digit/acc" in r and r["step"] == 0 for r in rows)  # step-0 baseline
    assert list((run_dir / "eval").glob("*.json")) and list((run_dir / "samples").glob("*.jsonl"))
    sample = json.loads((next((run_dir / "samples").glob("train-*.jsonl"))).read_text().splitlines()[0])
    assert {"prompt", "completion", "extracted", "gold", "correct", "reward"} <= set(sample)
    # the final model is a plain HF folder and every trainable parameter moved
    final = AutoModelForCausalLM.from_pretrained(run_dir / "final")
    initial, _ = load_model("tiny", seed=0)
    before = dict(initial.named_parameters())
    unchanged = [n for n, p in final.named_parameters() if torch.equal(p, before[n])]
    assert not unchanged, f"parameters that did not change: {unchanged}"


@pytest.mark.parametrize("algo", sorted(PRESETS))
def test_every_preset_runs_two_steps(tmp_path, digit_tasks, algo):
    run_dir = run(tmp_path, digit_tasks, algo, steps=2, eval_every="0", checkpoint_every="0", eval_limit="2")
    rows = metric_rows(run_dir)
    trained = [r for r in rows if "loss/policy" in r]
    assert len(trained) == 2 and all(r["loss/policy"] == r["loss/policy"] for r in trained)  # not NaN
    if algo == "ppo":
        assert all("value/explained_var" in r and "loss/value" in r for r in trained)


def test_no_reference_model_without_kl(digit_tasks, tmp_path):
    """Memory: kl_coef = 0 builds no frozen copy unless KL drift is asked for explicitly."""
    from mathrl.run_state import build_run_state

    base = {**E2E, "task": "digit", "tasks_dir": str(digit_tasks), "max_steps": "1"}
    state = build_run_state(build_config("dapo", None, {**base, "output": str(tmp_path / "a")}))
    assert state.cfg.kl_coef == 0 and state.ref_model is None
    state = build_run_state(build_config("grpo", None, {**base, "output": str(tmp_path / "b")}))
    assert state.ref_model is not None
    state = build_run_state(build_config("dapo", None, {**base, "eval_kl": "true", "output": str(tmp_path / "c")}))
    assert state.ref_model is not None
