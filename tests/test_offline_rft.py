"""Offline RFT (DeepSeekMath §5.2.1): samples come from the frozen initial model, not the policy."""

import json

import pytest
import torch

from conftest import metric_rows, write_digit_task
from mathrl.config import build_config
from mathrl.recipe import Recipe
from mathrl.train import train

SAMPLED = {"model": "tiny", "prompts_per_step": "2", "group_size": "4", "max_new_tokens": "8", "eval_limit": "2",
        "eval_every": "0", "samples_every": "1", "format_reward": "0.5", "save_final": "true"}


def run(tmp_path, algo, lr, steps=3):
    (tmp_path / "tasks").mkdir(exist_ok=True)
    tasks = write_digit_task(tmp_path / "tasks")
    out = tmp_path / f"{algo}-{lr}"
    cfg = build_config(algo, None, {**SAMPLED, "task": "digit", "tasks_dir": str(tasks), "max_steps": str(steps),
                                    "lr": lr, "output": str(out)})
    return train(cfg, progress=False)


def completions(run_dir):
    return [[json.loads(x)["completion"] for x in p.read_text().splitlines()]
            for p in sorted((run_dir / "samples").glob("train-step-*.jsonl"))]


def final_weights(run_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(run_dir / "final")
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_offline_rft_is_sft_on_the_correct_samples_of_a_frozen_model():
    r = Recipe.from_config(build_config("offline_rft"))
    assert r.rollout_from_reference and r.needs_reference and not r.reference_pass  # no KL term, but a sampler
    assert not r.needs_old_pass and r.passes.generate and r.passes.forward == 0
    rewards = torch.tensor([1.0, 0.0, 0.5, -0.25])  # correct, wrong, format bonus only counts as > 0, penalty
    adv = r.advantage.outcome(rewards, 4)  # I(o) of DeepSeekMath Eq. 10
    logp = torch.tensor([[-1.0, -2.0], [-3.0, -4.0], [-0.5, -0.5], [-1.5, -1.5]])  # (4, 2)
    loss, low, high = r.policy_loss(logp, logp - 0.3, adv, torch.ones(4, 2), 0.2, 0.2)
    # -I(o) log p: the wrong and penalised samples contribute nothing; no ratio (old_logp is ignored)
    assert torch.equal(loss, torch.tensor([[1.0, 2.0], [0.0, 0.0], [0.5, 0.5], [0.0, 0.0]]))
    assert not (low | high).any()


def test_the_policy_learns_but_the_samples_stay_those_of_the_initial_model(tmp_path):
    """Two offline RFT runs that differ only in the learning rate end with different policies but
    draw identical samples at every step: the samples never come from the policy. The same pair
    of online RFT runs samples differently once the policies have moved (the check can fail)."""
    slow, fast = run(tmp_path, "offline_rft", "1e-3"), run(tmp_path, "offline_rft", "3e-2")
    a, b = completions(slow), completions(fast)
    assert len(a) == 3 and a == b
    wa, wb = final_weights(slow), final_weights(fast)
    assert any(not torch.equal(wa[n], wb[n]) for n in wa)  # the two policies did move apart
    rows = metric_rows(fast)
    assert all(r["optim/steps"] == 1 for r in rows if "optim/steps" in r)  # correct samples were trained on
    online = completions(run(tmp_path, "online_rft", "1e-3")), completions(run(tmp_path, "online_rft", "3e-2"))
    assert online[0][0] == online[1][0] and online[0][1:] != online[1][1:]


@pytest.mark.parametrize("algo", ["offline_rft", "online_rft", "grpo"])
def test_equal_samples_per_step_so_budgets_compare(algo):
    cfg = build_config(algo)
    assert (cfg.prompts_per_step, cfg.group_size) == (build_config("grpo").prompts_per_step,
                                                      build_config("grpo").group_size)
