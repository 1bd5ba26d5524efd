"""mathrl.engine.decoder computes what transformers computes: logits, caches, shared prompts, versions."""

import pytest
import torch

from mathrl.engine.decoder import KVCache, decoder_for, generate_rows
from mathrl.rollout import encode_prompts, left_pad
from mathrl.types import Problem

PROMPTS = ["What is 2+3?", "Hi", "A much longer question, padded on the left"]


def chat(text, i=0):
    return Problem(id=str(i), question=text, gold="5", messages=[{"role": "user", "content": text}])


def prompts(tok):
    return left_pad(encode_prompts(tok, [chat(p, i) for i, p in enumerate(PROMPTS)]), tok.pad_token_id)


def positions(mask):
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def transformers_last_logits(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits[:, -1].float()


def run_decoder(model, ids, mask, steps: list[torch.Tensor]) -> list[torch.Tensor]:
    """Logits of the prefill and of each decode step feeding `steps` (each (n,) tokens)."""
    dec = decoder_for(model)
    bias = torch.zeros(ids.shape).masked_fill(mask == 0, -torch.inf)
    cache = KVCache(dec, ids.shape[0], ids.shape[1] + len(steps), bias)
    pos = positions(mask)
    with torch.no_grad():
        out = [dec.forward(ids, pos, cache)]
        for t, token in enumerate(steps):
            out.append(dec.forward(token[:, None], pos[:, -1:] + 1 + t, cache))
    return out


def assert_matches_transformers(model, tok, atol):
    ids, mask = prompts(tok)
    gen = torch.Generator().manual_seed(0)
    steps = [torch.randint(5, len(tok), (ids.shape[0],), generator=gen) for _ in range(5)]
    ours = run_decoder(model, ids, mask, steps)
    for t in range(len(steps) + 1):  # the reference recomputes the whole sequence each time
        seq = torch.cat([ids] + [s[:, None] for s in steps[:t]], 1)
        seq_mask = torch.cat([mask, torch.ones(ids.shape[0], t, dtype=mask.dtype)], 1)
        torch.testing.assert_close(ours[t], transformers_last_logits(model, seq, seq_mask), atol=atol, rtol=0)


@pytest.mark.parametrize("grow", [64, 2])  # 2: the cache grows (and is copied) every other column
def test_prefill_and_decode_logits_equal_transformers_with_left_padding(tiny, monkeypatch, grow):
    monkeypatch.setattr(KVCache, "GROW", grow)
    model, tok = tiny
    assert_matches_transformers(model, tok, atol=1e-4)


def test_qwen2_layout_with_qkv_biases_equals_transformers(tiny):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    _, tok = tiny
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rope_theta=1000.0, pad_token_id=tok.pad_token_id)
    model = Qwen2ForCausalLM(config).eval()
    for layer in model.model.layers:  # random init leaves biases at zero: make them matter
        torch.nn.init.normal_(layer.self_attn.q_proj.bias, std=0.5)
        torch.nn.init.normal_(layer.self_attn.k_proj.bias, std=0.5)
    assert model.model.layers[0].self_attn.q_proj.bias is not None
    assert_matches_transformers(model, tok, atol=1e-4)


def test_bf16_mixed_precision_is_within_rounding_of_transformers_under_autocast():
    from mathrl.models import compute_precision, load_model

    model, tok = load_model("tiny", seed=0, dtype="bfloat16")
    ids, mask = prompts(tok)
    with compute_precision(model):
        ref = torch.log_softmax(transformers_last_logits(model, ids, mask), -1)
    ours = torch.log_softmax(run_decoder(model, ids, mask, [])[0], -1)
    assert decoder_for(model).compute == torch.bfloat16
    assert (ours - ref).abs().max() < 0.05  # bf16 rounding of a few matmul orders


def test_dropping_rows_from_the_cache_leaves_the_others_unchanged(tiny):
    model, tok = tiny
    ids, mask = prompts(tok)
    dec = decoder_for(model)
    cache = KVCache(dec, 3, ids.shape[1] + 4, torch.zeros(ids.shape).masked_fill(mask == 0, -torch.inf))
    pos, token = positions(mask), torch.tensor([[7], [8], [9]])
    with torch.no_grad():
        dec.forward(ids, pos, cache)
        dec.forward(token, pos[:, -1:] + 1, cache)
        cache.select(torch.tensor([2, 0]))  # row 1 finished; the order of the others may change too
        got = dec.forward(token[[2, 0]], pos[[2, 0], -1:] + 2, cache)
    seq = torch.cat([ids, token, token], 1)[[2, 0]]
    seq_mask = torch.cat([mask, torch.ones(3, 2, dtype=mask.dtype)], 1)[[2, 0]]
    torch.testing.assert_close(got, transformers_last_logits(model, seq, seq_mask), atol=1e-4, rtol=0)


def test_a_group_shares_its_prompt_prefill_and_samples_its_own_tokens(tiny):
    model, tok = tiny
    ids, mask = prompts(tok)
    rows = torch.tensor([0, 0, 0, 2, 2])  # two groups: prompt 0 three times, prompt 2 twice
    outs = []
    for which in (torch.tensor([0, 0, 0, 1, 1]), torch.arange(5)):  # shared prefill, or one per row
        torch.manual_seed(3)
        outs.append(generate_rows(decoder_for(model), ids[rows], mask[rows], which, 10, [], tok.pad_token_id,
                                  greedy=False, temperature=3.0)[0])
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0][0], outs[0][1])  # rows of a group draw their own tokens


def test_the_snapshot_is_rebuilt_after_an_optimizer_step_and_only_then(tiny):
    from mathrl.models import load_model

    _, tok = tiny
    model, _ = load_model("tiny", seed=1)
    first = decoder_for(model)
    assert decoder_for(model) is first  # nothing changed: the prepared weights are reused
    for optimizer in (torch.optim.SGD(model.parameters(), lr=0.5),
                      torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)):  # fused: no version bump
        model(input_ids=torch.tensor([[5, 6, 7]])).logits.logsumexp(-1).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        assert decoder_for(model) is not first
        first = decoder_for(model)
        assert_matches_transformers(model, tok, atol=1e-4)  # the new snapshot holds the new weights
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight.mul_(2.0)  # an in-place write (as load_state_dict)
    assert decoder_for(model) is not first
    assert_matches_transformers(model, tok, atol=1e-4)


def test_models_it_does_not_cover_keep_the_transformers_path(tiny, monkeypatch):
    from transformers import GPT2Config, GPT2LMHeadModel

    model, tok = tiny
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2))
    assert decoder_for(gpt2) is None
    monkeypatch.setattr(model, "_is_fsdp_managed_module", True, raising=False)
    assert decoder_for(model) is None
    monkeypatch.setattr(model, "_is_fsdp_managed_module", False, raising=False)
    monkeypatch.setattr(model.config, "use_sliding_window", True, raising=False)
    assert decoder_for(model) is None
    monkeypatch.setattr(model.config, "use_sliding_window", False, raising=False)
    assert decoder_for(model) is not None


def test_a_lora_model_keeps_the_transformers_path():
    pytest.importorskip("peft")
    from mathrl.models import load_model

    model, _ = load_model("tiny", seed=0, lora_rank=4)
    assert decoder_for(model) is None


@pytest.mark.parametrize("dtype, atol", [("float32", 1e-5), ("bfloat16", 0.2)])
def test_the_engine_reports_the_log_probs_it_sampled_with(dtype, atol):
    """Each sampled token's log-prob under softmax(logits / T) (before top-p, as vLLM reports it)
    is the trainer's for the same weights: to float rounding in float32; under bf16 autocast the
    snapshot and the trainer round differently, the mismatch rollout/logp_abs_diff_* measures."""
    from mathrl.logprobs import completion_logprobs
    from mathrl.models import load_model
    from mathrl.rollout import hf_generate

    model, tok = load_model("tiny", seed=0, dtype=dtype)
    problems = [chat(p, i) for i, p in enumerate(PROMPTS)]
    torch.manual_seed(0)
    batch = hf_generate(model, tok, problems, 2, 12, temperature=0.7, top_p=0.9)
    trainer = completion_logprobs(model, batch, temperature=0.7)["logp"]  # (N, T)
    on = batch.completion_mask.bool()
    assert batch.sample_logprobs.shape == trainer.shape and (batch.sample_logprobs[~on] == 0).all()
    gap = (batch.sample_logprobs - trainer)[on].abs()
    assert gap.max() < atol and (dtype == "float32" or gap.max() > 0)
    greedy = hf_generate(model, tok, problems, 1, 4, greedy=True)
    assert greedy.sample_logprobs is None  # the argmax path samples nothing
