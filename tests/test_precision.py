"""CPU mixed precision (dtype=bfloat16): float32 weights, bf16 matmuls, log-probs close to fp32.

The tolerances are those measured on SmolLM2-135M (results/bench/README.md, "bf16 on CPU"):
per completion token, |log p_bf16 - log p_fp32| averaged 0.03 nats (max 0.26) on sampled
arithmetic completions, and the policy gradient kept cosine > 0.99 with the fp32 one.
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import needs_smollm2

from mathrl.logprobs import completion_logprobs, forward_completion
from mathrl.models import AUTOCAST_ATTR, compute_precision, frozen_copy, load_model
from mathrl.rollout import hf_generate
from mathrl.types import Problem

PROBLEMS = [Problem(id=str(i), question=f"What is {i} + {i + 3}?", gold=str(2 * i + 3),
                    messages=[{"role": "user", "content": f"What is {i} + {i + 3}?"}]) for i in range(2)]
MEAN_TOL, MAX_TOL = 0.05, 0.5  # nats per completion token (measured 0.030 / 0.255 on SmolLM2)


def mixed(model):
    """The same weights, marked for bf16 compute (what load_model(dtype="bfloat16") returns)."""
    out = copy.deepcopy(model)
    setattr(out, AUTOCAST_ATTR, torch.bfloat16)
    return out


def policy_gradient(model, batch, adv):
    model.zero_grad()
    out = forward_completion(model, batch.input_ids, batch.attention_mask, batch.prompt_len)
    (-(out["logp"] * adv * batch.completion_mask).sum() / batch.completion_mask.sum()).backward()
    return torch.cat([p.grad.double().flatten() for p in model.parameters() if p.grad is not None])


def compare(fp32, bf16, tokenizer):
    torch.manual_seed(0)
    batch = hf_generate(fp32, tokenizer, PROBLEMS, 4, 16)
    mask = batch.completion_mask.bool()
    ref = completion_logprobs(fp32, batch)["logp"]
    low = completion_logprobs(bf16, batch)["logp"]
    assert low.dtype == torch.float32  # the log-softmax runs in float32 whatever the matmuls
    diff = (low - ref)[mask].abs()
    adv = torch.randn(batch.size, 1, generator=torch.Generator().manual_seed(1))
    cos = torch.nn.functional.cosine_similarity(policy_gradient(fp32, batch, adv), policy_gradient(bf16, batch, adv), 0)
    return diff, float(cos)


def test_mixed_precision_keeps_float32_weights_and_runs_bf16_matmuls(tiny):
    model, _ = tiny
    low = mixed(model)
    seen = []
    hook = low.model.layers[0].mlp.up_proj.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    completion_logprobs(low, hf_generate(low, tiny[1], PROBLEMS, 2, 4))
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}
    assert {p.dtype for p in low.parameters()} == {torch.float32}
    with compute_precision(model):  # an fp32 model runs plain
        assert not torch.is_autocast_enabled("cpu")


def test_mixed_precision_log_probs_and_gradient_are_close_to_fp32_on_tiny(tiny):
    model, tokenizer = tiny
    diff, cos = compare(model, mixed(model), tokenizer)
    assert float(diff.mean()) < MEAN_TOL and float(diff.max()) < MAX_TOL
    assert cos > 0.99


def test_adamw_moves_every_float32_master_weight(tiny):
    """The reason weights stay float32: in bf16, lr-sized steps round away (measured: one
    AdamW step at lr 1e-5 changed 1.9% of SmolLM2's bf16 weights)."""
    model = mixed(tiny[0])
    batch = hf_generate(model, tiny[1], PROBLEMS, 2, 4)
    policy_gradient(model, batch, torch.ones(batch.size, 1))
    before = [p.detach().clone() for p in model.parameters()]
    torch.optim.AdamW(model.parameters(), lr=1e-5).step()
    changed = [bool((p.detach() != b).any()) for p, b in zip(model.parameters(), before)]
    assert all(changed)


@needs_smollm2
@pytest.mark.slow
def test_bf16_log_probs_of_smollm2_are_within_the_stated_tolerance():
    fp32, tokenizer = load_model("smollm2-135m", dtype="float32")
    bf16, _ = load_model("smollm2-135m", dtype="bfloat16")
    diff, cos = compare(fp32, bf16, tokenizer)
    assert float(diff.mean()) < MEAN_TOL and float(diff.max()) < MAX_TOL
    assert cos > 0.99


def test_a_frozen_copy_gives_the_policys_bf16_log_probs_bit_for_bit(tiny):
    """The reference (a frozen deep copy) and the policy see the same precision, so the KL
    and ratio terms start at exactly 0 under mixed precision as they do in fp32."""
    policy = mixed(tiny[0])
    ref = frozen_copy(policy)
    assert ref.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16  # stored as autocast would cast it
    assert ref.model.layers[0].input_layernorm.weight.dtype == torch.float32
    torch.manual_seed(0)
    batch = hf_generate(policy, tiny[1], PROBLEMS, 2, 8)
    assert torch.equal(completion_logprobs(policy, batch)["logp"], completion_logprobs(ref, batch)["logp"])


def test_log_prob_passes_use_eager_attention_for_short_cpu_sequences_only(tiny, monkeypatch):
    """SDPA's CPU backward is slow on short sequences (results/bench); long ones keep SDPA,
    whose memory does not grow with L^2. The setting is restored after each pass."""
    from mathrl import logprobs

    model, _ = tiny
    seen = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **kw: seen.append(model.config._attn_implementation)
                        or forward(*a, **kw))
    for columns in (12, logprobs.EAGER_MAX_COLUMNS + 1):
        ids = torch.randint(5, 50, (2, columns))
        logprobs.forward_completion(model, ids, torch.ones_like(ids), columns - 4)
    assert seen[0] == "eager" and seen[-1] == "sdpa" and model.config._attn_implementation == "sdpa"
