"""Completions packed behind their shared prompt: the log-prob passes without padding columns.

A chunk of a log-prob pass holds the G completions of a group (or a few groups). Run as a
(G, longest completion) batch on top of the prompt's cache, every row pays for the columns of
the longest one: 107 of the 512 completion columns of `mathrl bench`'s step were padding, and
more where lengths vary widely (GSM8K's 512-token completions). Packed, each distinct prompt
gets one sequence holding its rows' completion tokens back to back, so every matmul of the
model (the projections, the MLP, the LM head) runs on real tokens only:

    prompt j (in the KV cache) | row a: c0 c1 .. | row b: c0 c1 c2 .. | ...

Positions restart at each row's completion (the prompt's length + t), and attention keeps the
rows apart: `packed_attention` gathers each row's queries and its keys (the prompt's columns
and its own completion's) into a (rows, width) batch, attends as the padded batch would, and
scatters the outputs back. Only the attention, a small part of the FLOPs, still sees padding.
The numbers are those of the padded batch up to float rounding (tests/test_packing.py: equal
to 1e-12 in float64, values and gradients). Used on a CPU with SDPA or eager attention, for
plain causal attention (PLAIN_ATTENTION_TYPES); elsewhere (GPUs, other attention kernels,
sliding windows, soft-capping) the padded batch stays: not measured or not reproduced here.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface

PACKED_ATTENTION = "mathrl_packed"
# attention implementations whose numbers packed_attention reproduces (others keep the padded batch)
PACKABLE = ("sdpa", "eager")
# model families whose attention is plain causal softmax attention, as packed_attention computes it
# (no sliding window, logit soft-capping, sinks or position bias: those keep the padded batch)
PLAIN_ATTENTION_TYPES = ("llama", "qwen2", "qwen3", "mistral")
# Sequences up to this many columns (keys per query here) attend by matmul-softmax-matmul on a
# CPU instead of SDPA, in every log-prob pass (logprobs.short_sequence_attention says why).
EAGER_MAX_COLUMNS = 256
# Packing pays when at least this share of a chunk's completion columns is padding: its gathers
# cost about what 3% of padding does (results/bench/speed4.md)
MIN_PADDING = 0.05


@dataclass
class PackedLayout:
    """Where the completion tokens of n rows over k distinct prompts sit once packed.

    Row r's input column t (completion token t, which predicts token t + 1) is `real[r, t]` for
    t < its completion length - 1; S is the longest packed sequence, P the prompt's columns."""
    ids: torch.Tensor  # (k, S) packed input tokens (0 past a sequence's end)
    positions: torch.Tensor  # (k, S)
    slot: torch.Tensor  # (n, w) flat index into k * S of row r's column t (0 where not real)
    real: torch.Tensor  # (n, w) bool
    key_slot: torch.Tensor  # (n, P + w) flat index into k * (P + S) of row r's key columns
    allowed: torch.Tensor  # (n, 1, w, P + w) bool: what row r's column t attends to
    back: torch.Tensor  # (k * S,) flat index into n * w of each packed slot (0 past a sequence's end)


def can_pack(config, completion_mask: torch.Tensor) -> bool:
    """Packing needs an attention it can stand in for and completions without holes (a mask
    of ones then zeros in every row, as rollouts and teacher-forced batches make them), and
    pays only with enough padding to remove."""
    contiguous = bool((completion_mask[:, 1:] <= completion_mask[:, :-1]).all())
    padding = 1.0 - float(completion_mask.float().mean())
    return (getattr(config, "_attn_implementation", None) in PACKABLE and _plain_attention(config) and contiguous
            and padding >= MIN_PADDING)


def _plain_attention(config) -> bool:
    windowed = (getattr(config, "sliding_window", None) is not None
                and (config.model_type == "mistral" or getattr(config, "use_sliding_window", False)))
    layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
    return (getattr(config, "model_type", None) in PLAIN_ATTENTION_TYPES and not windowed
            and layer_types == {"full_attention"} and getattr(config, "attn_logit_softcapping", None) is None)


def pack(inverse: torch.Tensor, k: int, ids: torch.Tensor, positions: torch.Tensor, prompt_mask: torch.Tensor,
         lengths: torch.Tensor) -> PackedLayout:
    """Layout of input columns ids/positions (n, w) of rows whose prompt is `inverse` (n,) of k,
    `lengths` (n,) real columns each; prompt_mask (n, P) marks each row's non-padding prompt."""
    n, w = ids.shape
    P = prompt_mask.shape[1]
    start = torch.zeros(n, dtype=torch.long)  # row r's first slot in its sequence
    filled = [0] * k
    for r, j in enumerate(inverse.tolist()):
        start[r], filled[j] = filled[j], filled[j] + int(lengths[r])
    S = max(max(filled), 1)
    t = torch.arange(w)
    real = t[None] < lengths[:, None]  # (n, w)
    slot = torch.where(real, inverse[:, None] * S + start[:, None] + t[None], 0)  # (n, w)
    flat_ids, flat_pos, back = (torch.zeros(k * S, dtype=torch.long) for _ in range(3))
    flat_ids[slot[real]] = ids[real]
    flat_pos[slot[real]] = positions[real]
    back[slot[real]] = (torch.arange(n)[:, None] * w + t[None])[real]
    prompt_keys = inverse[:, None] * (P + S) + torch.arange(P)[None]  # (n, P)
    own_keys = torch.where(real, inverse[:, None] * (P + S) + P + start[:, None] + t[None], 0)  # (n, w)
    causal = (t[None, :] <= t[:, None])[None] & real[:, None, :]  # (n, w, w) own earlier real columns
    causal |= torch.eye(w, dtype=torch.bool)[None]  # a padding query attends to itself (never to nothing: NaN)
    allowed = torch.cat([prompt_mask.bool()[:, None, :].expand(n, w, P), causal], -1)  # (n, w, P + w)
    return PackedLayout(ids=flat_ids.view(k, S), positions=flat_pos.view(k, S), slot=slot, real=real,
                        key_slot=torch.cat([prompt_keys, own_keys], 1), allowed=allowed[:, None], back=back)


_LAYOUT: ContextVar[PackedLayout | None] = ContextVar("mathrl_packed_layout", default=None)


@contextmanager
def packed_forward(config, layout: PackedLayout):
    """Inside the block the model attends with `packed_attention` over `layout`."""
    before = config._attn_implementation
    config._attn_implementation = PACKED_ATTENTION
    token = _LAYOUT.set(layout)
    try:
        yield
    finally:
        _LAYOUT.reset(token)
        config._attn_implementation = before


def packed_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """Attention of packed sequences: query (k, H, S, D) over key/value (k, K, P + S, D), the
    prompt's cached columns then the packed ones; returns (k, S, H, D) as transformers' SDPA."""
    layout = _LAYOUT.get()
    if layout is None or dropout:
        raise RuntimeError("packed_attention runs only inside packing.packed_forward, without dropout")
    unsupported = [k for k in ("sliding_window", "softcap", "s_aux", "position_bias") if kwargs.get(k) is not None]
    if unsupported:  # can_pack keeps such models on the padded batch; never compute them wrongly
        raise RuntimeError(f"packed_attention cannot apply {unsupported}")
    k, H, S, D = query.shape
    K = key.shape[1]
    n, w = layout.slot.shape
    scaling = D ** -0.5 if scaling is None else scaling
    q = _rows(query, layout.slot).view(n, w, H, D).transpose(1, 2)  # (n, H, w, D)
    keys = _rows(key, layout.key_slot).view(n, -1, K, D).transpose(1, 2)  # (n, K, P + w, D)
    values = _rows(value, layout.key_slot).view(n, -1, K, D).transpose(1, 2)  # (n, K, P + w, D)
    L = keys.shape[2]
    if query.device.type == "cpu" and L <= EAGER_MAX_COLUMNS:  # each KV head read once by its H/K query heads
        scores = torch.matmul(q.reshape(n, K, H // K * w, D), keys.transpose(-1, -2)) * scaling  # (n, K, H/K*w, L)
        scores = scores.view(n, K, H // K, w, L).masked_fill(~layout.allowed[:, :, None], float("-inf"))
        probs = torch.softmax(scores, -1, dtype=torch.promote_types(scores.dtype, torch.float32)).to(query.dtype)
        out = torch.matmul(probs.view(n, K, H // K * w, L), values).view(n, H, w, D)  # (n, H, w, D)
    else:
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=layout.allowed, scale=scaling,
                                             enable_gqa=K != H)  # (n, H, w, D)
    out = out.transpose(1, 2).reshape(n * w, H * D).index_select(0, layout.back)  # (k * S, H * D)
    return out.view(k, S, H, D), None


def _rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Columns `index` (any shape, flat over x's batch and columns) of x (b, heads, L, D), as
    (index.numel(), heads * D) rows: index_select, whose backward is an index_add."""
    b, heads, L, D = x.shape
    return x.transpose(1, 2).reshape(b * L, heads * D).index_select(0, index.flatten())


def _no_mask(*args, **kwargs):
    """packed_attention masks from its layout; transformers need not build a mask."""
    return None


AttentionInterface.register(PACKED_ATTENTION, packed_attention)
AttentionMaskInterface.register(PACKED_ATTENTION, _no_mask)
