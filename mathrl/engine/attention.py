"""Attention kernels registered with transformers, and a switch to run one in place of SDPA."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask


def decode_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """Single-query attention on a CPU as two matmuls over each KV group's query heads (no KV
    repeat), faster than SDPA's CPU kernels at decode shapes (results/bench/README.md).
    Anything else (prefill, training, GPUs) goes to SDPA unchanged."""
    if (query.shape[2] != 1 or query.device.type != "cpu" or torch.is_grad_enabled() or dropout
            or kwargs.get("position_bias") is not None or kwargs.get("softcap") is not None):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    n, heads, _, dim = query.shape
    groups = key.shape[1]
    q = query.view(n, groups, heads // groups, dim)  # head h reads KV head h // (heads/groups)
    scores = torch.matmul(q, key.transpose(-1, -2)) * (dim ** -0.5 if scaling is None else scaling)  # (n, g, h/g, L)
    if attention_mask is not None:
        mask = attention_mask[..., :key.shape[2]]  # (n, 1, 1, L)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    probs = torch.softmax(scores.float(), -1).to(value.dtype)  # (n, g, h/g, L)
    out = torch.matmul(probs, value)  # (n, g, h/g, D)
    return out.view(n, heads, 1, dim).transpose(1, 2), None  # (n, 1, H, D) as SDPA returns it


DECODE_ATTENTION = "mathrl_decode"
AttentionInterface.register(DECODE_ATTENTION, decode_attention)
AttentionMaskInterface.register(DECODE_ATTENTION, sdpa_mask)


@contextmanager
def instead_of_sdpa(config, implementation: str):
    """Inside the block, a model whose config says SDPA attention runs `implementation`
    (a transformers attention name); any other setting is left alone. Restored on exit."""
    before = config._attn_implementation
    if before == "sdpa":
        config._attn_implementation = implementation
    try:
        yield
    finally:
        config._attn_implementation = before
