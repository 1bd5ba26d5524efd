"""Completions packed behind their shared prompt (mathrl.engine.packing) give a plain forward's numbers.

tests/test_bench.py compares the log-prob pass with a plain forward in float32; here the packed
path is checked to be the one taken, to agree in float64 to rounding (values and gradients),
and its layout is checked on a hand-made case.
"""

from __future__ import annotations

import copy

import pytest
import torch

import mathrl.logprobs as logprobs
from mathrl.engine.packing import can_pack, pack
from mathrl.rollout import hf_generate
from mathrl.types import Problem

from test_bench import plain_forward


PROBLEMS = [Problem(id=str(i), question=q, gold="0", prompt=q) for i, q in
            enumerate(["What is 2+2?", "A longer question, so that prompts are left-padded: 9-4?"])]


@pytest.fixture(scope="module")
def tiny64(tiny):
    model, tokenizer = tiny
    model64 = copy.deepcopy(model).double()
    torch.manual_seed(3)
    batch = hf_generate(model64, tokenizer, PROBLEMS, 4, 9, temperature=1.0)  # 8 rows, 2 groups
    ids, mask, P = batch.input_ids.clone(), batch.attention_mask.clone(), batch.prompt_len
    # lengths 9, 1 and 0 in the first group, so rows differ and the edge cases are in
    for row, length in ((0, 9), (1, 1), (2, 0)):
        mask[row, P + length:] = 0
        ids[row, P + length:] = tokenizer.pad_token_id
    return model64, ids, mask, P


def _outputs_and_grads(fn, model, ids, mask, P, head):
    model.zero_grad()
    head.zero_grad()
    out = fn(model, ids, mask, P, 0.7, value_head=lambda h: head(h).squeeze(-1))
    cmask = mask[:, P:].to(out["logp"].dtype)
    ((out["logp"] + 0.1 * out["entropy"] + out["values"]) * cmask).sum().backward()
    grads = [p.grad.clone() for p in [*model.parameters(), *head.parameters()]]
    model.zero_grad(set_to_none=True)
    return {k: v * cmask for k, v in out.items()}, grads


def _completion_pass(*args, **kwargs):
    return logprobs.forward_completion(*args, **kwargs, with_entropy=True)


def _norm_in_input_dtype(self, hidden):
    """transformers' RMSNorm without its float32 upcast: in a float64 model that upcast puts
    float32 rounding into every gradient (measured: 3e-8 of their norm between two ways of
    summing the same terms), which would hide a real error of that size."""
    variance = hidden.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden * torch.rsqrt(variance + self.variance_epsilon))


def test_the_packed_pass_equals_a_plain_forward_in_float64(tiny64, monkeypatch):
    model, ids, mask, P = tiny64
    head = torch.nn.Linear(model.config.hidden_size, 1).double()
    layouts = []
    monkeypatch.setattr(logprobs, "pack", lambda *a: layouts.append(pack(*a)) or layouts[-1])
    monkeypatch.setattr(type(model.model.norm), "forward", _norm_in_input_dtype)
    ref, ref_grads = _outputs_and_grads(plain_forward, model, ids, mask, P, head)
    got, got_grads = _outputs_and_grads(_completion_pass, model, ids, mask, P, head)
    assert len(layouts) == 1 and layouts[0].ids.shape[0] == 2  # packed: one sequence per prompt
    assert int(layouts[0].real.sum()) == int(mask[:, P + 1:].sum())  # real columns only
    for key in ("logp", "entropy", "values"):  # measured: <= 2e-15 apart
        torch.testing.assert_close(got[key], ref[key], atol=1e-12, rtol=1e-12)
    for g_ref, g_got in zip(ref_grads, got_grads):  # measured: <= 2e-15 of each gradient's norm
        assert (g_got - g_ref).norm() <= 1e-12 * g_ref.norm()


def test_packing_changes_nothing_but_the_padding_columns(tiny64, monkeypatch):
    model, ids, mask, P = tiny64
    head = torch.nn.Linear(model.config.hidden_size, 1).double()
    packed, packed_grads = _outputs_and_grads(_completion_pass, model, ids, mask, P, head)
    with torch.no_grad():
        raw = _completion_pass(model, ids, mask, P)
    monkeypatch.setattr(logprobs, "can_pack", lambda *a: False)
    padded, padded_grads = _outputs_and_grads(_completion_pass, model, ids, mask, P, head)
    for key in ("logp", "entropy", "values"):  # measured: equal to 1e-16 relative
        torch.testing.assert_close(packed[key], padded[key], atol=1e-12, rtol=1e-12)
    for g_padded, g_packed in zip(padded_grads, packed_grads):
        torch.testing.assert_close(g_packed, g_padded, atol=1e-12, rtol=1e-12)
    padding = mask[:, P + 1:] == 0  # column 0 is the prompt's prediction, computed for every row
    assert padding.any() and (raw["logp"][:, 1:][padding] == 0).all()  # never computed when packed


def test_layout_places_each_row_after_the_previous_one_of_its_prompt():
    # rows 0, 2 share prompt 0; row 1 is prompt 1; 4 input columns; lengths 3, 2, 1
    ids = torch.tensor([[11, 12, 13, 0], [21, 22, 0, 0], [31, 0, 0, 0]])
    positions = torch.tensor([[5, 6, 7, 8], [3, 4, 5, 6], [5, 6, 7, 8]])
    prompt_mask = torch.tensor([[1, 1], [0, 1], [1, 1]])
    layout = pack(torch.tensor([0, 1, 0]), 2, ids, positions, prompt_mask, torch.tensor([3, 2, 1]))
    assert layout.ids.tolist() == [[11, 12, 13, 31], [21, 22, 0, 0]]
    assert layout.positions.tolist() == [[5, 6, 7, 5], [3, 4, 0, 0]]
    assert layout.slot[2, 0] == 3 and layout.slot[1, 1] == 5  # flat index into 2 x 4 slots
    allowed = layout.allowed[:, 0]  # (rows, query column, prompt 2 + own 4 columns)
    assert allowed[0, 2].tolist() == [True, True, True, True, True, False]  # prompt, own columns 0..2
    assert allowed[1, 0].tolist() == [False, True, True, False, False, False]  # left padding masked
    assert allowed[2, 2].tolist() == [True, True, True, False, True, False]  # padding query: itself only of its own
    assert layout.key_slot[2].tolist()[:3] == [0, 1, 2 + 3]  # prompt 0's columns, then its packed slot 3


def test_holes_or_too_little_padding_keep_the_padded_batch(tiny):
    config = tiny[0].config
    assert can_pack(config, torch.tensor([[1, 1, 0], [1, 0, 0]]))
    assert not can_pack(config, torch.tensor([[1, 0, 1], [1, 0, 0]]))  # a hole
    assert not can_pack(config, torch.ones(2, 3))  # nothing to remove
    assert not can_pack(config, torch.tensor([[1] * 20, [1] * 19 + [0]]))  # 2.5% padding: the gathers cost more


@pytest.mark.parametrize("change", [dict(model_type="gemma2"), dict(model_type="mistral", sliding_window=4096),
                                    dict(model_type="qwen2", use_sliding_window=True, sliding_window=64),
                                    dict(layer_types=["sliding_attention", "full_attention"]),
                                    dict(attn_logit_softcapping=50.0)])
def test_attention_that_packing_cannot_reproduce_keeps_the_padded_batch(tiny, change):
    config = copy.deepcopy(tiny[0].config)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert can_pack(config, mask)
    for key, value in change.items():
        setattr(config, key, value)
    assert not can_pack(config, mask)
