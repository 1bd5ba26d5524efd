"""LoRA training (lora_rank > 0): peft adapters train, the base stays frozen, and the KL
reference is the same module with its adapters switched off — never a second copy."""

from __future__ import annotations

import gc
import math

import pytest
import torch

from conftest import metric_rows, write_digit_task
from mathrl.config import build_config
from mathrl.run_state import build_run_state
from mathrl.train import train, train_step

pytest.importorskip("peft")

LORA = {"model": "tiny", "task": "digit", "lora_rank": "16", "prompts_per_step": "2", "group_size": "4",
        "max_new_tokens": "8", "lr": "1e-2", "format_reward": "0.5", "eval_limit": "2", "eval_every": "0",
        "samples_every": "0", "save_final": "false", "kl_coef": "0.04", "eval_kl": "true"}


def live_models(cls) -> int:
    gc.collect()
    return sum(type(o) is cls for o in gc.get_objects())  # type(): no isinstance hooks on proxies


def test_lora_trains_only_adapters_against_the_adapter_free_base_without_a_copy(tmp_path):
    from transformers import LlamaForCausalLM

    cfg = build_config("grpo", None, {**LORA, "tasks_dir": str(write_digit_task(tmp_path)),
                                      "output": str(tmp_path / "run"), "max_steps": "2"})
    before_build = live_models(LlamaForCausalLM)
    state = build_run_state(cfg)
    # one model in memory: no frozen reference copy (a deepcopy would add a second instance)
    assert state.ref_model is None and live_models(LlamaForCausalLM) == before_build + 1
    start = {n: p.detach().clone() for n, p in state.accelerator.unwrap_model(state.model).named_parameters()}
    steps = []
    for _ in range(2):
        steps.append(train_step(state))
        state.step += 1
    after = dict(state.accelerator.unwrap_model(state.model).named_parameters())
    changed = {n for n, p in after.items() if not torch.equal(p, start[n])}
    adapters = {n for n in after if ".lora_" in n}
    assert adapters and changed == adapters  # every adapter weight moved, nothing else did
    assert not any(p.requires_grad for n, p in after.items() if n not in adapters)
    # step 1: B = 0, the policy is the base, KL is 0; step 2: adapters moved, the base did not
    kls = [s["kl/mean"] for s in steps]
    assert all(math.isfinite(k) for k in kls) and kls[0] == pytest.approx(0.0, abs=1e-7) and kls[1] > 0
    assert live_models(LlamaForCausalLM) == before_build + 1


def test_lora_run_from_the_config_key_finishes_with_finite_kl_and_a_merged_final_model(tmp_path):
    from transformers import AutoModelForCausalLM

    from mathrl.models import load_model

    run_dir = train(build_config("grpo", None, {**LORA, "tasks_dir": str(write_digit_task(tmp_path)),
                                                "output": str(tmp_path / "run"), "max_steps": "2",
                                                "save_final": "true"}), progress=False)
    rows = metric_rows(run_dir)
    assert [r["step"] for r in rows if "kl/mean" in r] == [1, 2]
    assert all(math.isfinite(r["kl/mean"]) for r in rows if "kl/mean" in r)
    evals = [r for r in rows if "eval/digit/kl_k3" in r]  # eval_kl: drift from the adapter-free base
    assert evals and all(math.isfinite(r["eval/digit/kl_k3"]) for r in evals)
    # final/ is a plain model with the adapters merged in: some base weight differs from init
    final = AutoModelForCausalLM.from_pretrained(run_dir / "final")
    base = dict(load_model("tiny", seed=0)[0].named_parameters())
    assert not any(".lora_" in n for n, _ in final.named_parameters())
    assert any(not torch.equal(p, base[n]) for n, p in final.named_parameters())
