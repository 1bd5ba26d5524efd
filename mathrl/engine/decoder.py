"""A compact decoder for Llama-family models: mathrl's rollout and eval engine on a CPU.

transformers' forward is written for every model and every device; on a CPU decoding a few
rows of a 135M model, most of a decode step is spent around the matmuls, not in them
(results/bench/README.md, "Speed II"). This module runs the same computation on a snapshot of
the weights prepared once per weight version:

  * the weights are cast to the compute dtype once (bf16 under CPU mixed precision), where
    autocast casts every float32 weight again at every forward, and pre-packed into oneDNN's
    blocked layout, which an unpacked weight is re-laid-out into at every call;
  * q/k/v are one matmul, gate/up another (fewer, larger GEMMs);
  * the KV cache grows in blocks of 64 columns and is written in place (no per-token
    concatenation); attention reads whole blocks, with the unfilled columns masked;
  * single-query attention is two grouped matmuls per layer (no KV-head repeat);
  * finished rows leave the batch in bulk (every step computes only rows still decoding,
    up to a quarter of dead rows between compactions, since a compaction copies the cache).

It mirrors what `torch.autocast` does to transformers' Llama, so the rollout samples from the
distribution the trainer's log-prob passes score: matmul inputs and outputs in the compute
dtype, the residual stream and RMSNorm in the weights' dtype (float32), rotary embeddings from
the model's own `rotary_emb` (every RoPE scaling variant), softmax in float32. Greedy output
equals `generate()`'s token for token in float32 (tests/test_decoder.py); in bf16 the two
differ by rounding only (the per-token log-prob gap is measured in the same tests).

Supported: `model_type` llama, qwen2 (q/k/v biases), mistral without an active sliding
window, SiLU-gated MLPs, on a CPU. Anything else (LoRA-wrapped or FSDP-sharded models,
other architectures, GPUs) returns None from `decoder_for` and keeps the transformers path.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch.optim.optimizer import register_optimizer_step_post_hook

from mathrl.models import AUTOCAST_ATTR

SUPPORTED_TYPES = ("llama", "qwen2", "mistral")


@dataclass
class _Layer:
    norm_attn: torch.Tensor  # (H,) weights' dtype
    qkv: torch.Tensor  # ((heads + 2 kv heads) * D, H) compute dtype
    qkv_bias: torch.Tensor | None
    out: torch.Tensor  # (H, heads * D)
    out_bias: torch.Tensor | None
    norm_mlp: torch.Tensor
    gate_up: torch.Tensor  # (2 I, H)
    gate_up_bias: torch.Tensor | None
    down: torch.Tensor  # (H, I)
    down_bias: torch.Tensor | None


def _cat_bias(*linears) -> torch.Tensor | None:
    biases = [lin.bias for lin in linears]
    if all(b is None for b in biases):
        return None
    return torch.cat([b if b is not None else torch.zeros(lin.out_features, dtype=lin.weight.dtype)
                      for b, lin in zip(biases, linears)])


def _unsupported(model) -> str | None:
    """Why `model` must keep the transformers path, or None."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) not in SUPPORTED_TYPES:
        return f"model_type {getattr(config, 'model_type', None)!r}"
    if getattr(model, "_is_fsdp_managed_module", False) or hasattr(model, "peft_config"):
        return "FSDP-sharded or LoRA-wrapped"
    if next(model.parameters()).device.type != "cpu":
        return "not on a CPU"
    if getattr(config, "hidden_act", "silu") != "silu" or getattr(config, "pretraining_tp", 1) != 1:
        return "activation or tensor-parallel layout"
    if getattr(config, "use_sliding_window", False) or any(t != "full_attention" for t in
                                                            getattr(config, "layer_types", None) or []):
        return "sliding-window attention"
    return None


class Decoder:
    """The weights of one model version, prepared for decoding; see the module docstring."""

    def __init__(self, model):
        inner = model.model
        config = model.config
        self.compute = getattr(model, AUTOCAST_ATTR, None) or inner.embed_tokens.weight.dtype
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.sliding_window = getattr(config, "sliding_window", None)
        self.packed = (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
                       and self.compute in (torch.float32, torch.bfloat16))
        self.embed, self.rotary = inner.embed_tokens.weight, inner.rotary_emb
        self.final_norm, self.eps = inner.norm.weight, inner.norm.variance_epsilon
        self.lm_head = self._weight(model.get_output_embeddings().weight)
        self.lm_head_bias = model.get_output_embeddings().bias
        self.scaling = getattr(inner.layers[0].self_attn, "scaling", self.head_dim ** -0.5)
        self.layers = []
        for block in inner.layers:
            att, mlp = block.self_attn, block.mlp
            self.layers.append(_Layer(
                norm_attn=block.input_layernorm.weight,
                qkv=self._weight(torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight])),
                qkv_bias=self._cast(_cat_bias(att.q_proj, att.k_proj, att.v_proj)),
                out=self._weight(att.o_proj.weight), out_bias=self._cast(att.o_proj.bias),
                norm_mlp=block.post_attention_layernorm.weight,
                gate_up=self._weight(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])),
                gate_up_bias=self._cast(_cat_bias(mlp.gate_proj, mlp.up_proj)),
                down=self._weight(mlp.down_proj.weight), down_bias=self._cast(mlp.down_proj.bias)))

    def _cast(self, t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.detach().to(self.compute).contiguous()

    def _weight(self, t: torch.Tensor) -> torch.Tensor:
        """A matmul weight in the compute dtype, pre-packed for oneDNN where torch has it: an
        unpacked weight is re-laid-out by every call, which halved the throughput of the
        16-row decode matmuls (results/bench/README.md)."""
        w = self._cast(t)
        return torch.ops.mkldnn._reorder_linear_weight(w, 16) if self.packed else w

    # ------------------------------------------------------------------------------------------
    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """transformers' RMSNorm: float32 statistics, scaled in the residual's dtype (one fused
        op on the float32 residual; the composite for a 16-bit one)."""
        if x.dtype == torch.float32 and weight.dtype == torch.float32:
            return F.rms_norm(x, x.shape[-1:], weight, self.eps)
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * h.to(x.dtype)

    def _linear(self, x, weight, bias=None):
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise(x.to(self.compute), weight, bias, "none", [], "")
        return F.linear(x.to(self.compute), weight, bias)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, cache: "KVCache") -> torch.Tensor:
        """Logits (a, V) of the last column after running tokens (a, s) at `positions` (a, s)
        on top of the cache's first a rows; appends their keys and values to the cache."""
        a, s = tokens.shape
        x = F.embedding(tokens, self.embed)  # (a, s, H) weights' dtype: the residual stream
        cos, sin = self.rotary(x, positions)  # (a, s, D)
        cos, sin = cos[:, None], sin[:, None]  # (a, 1, s, D)
        H, K, D = self.heads, self.kv_heads, self.head_dim
        start = cache.length
        cache.reserve(s)
        for i, layer in enumerate(self.layers):
            qkv = self._linear(self._norm(x, layer.norm_attn), layer.qkv, layer.qkv_bias)  # (a, s, (H+2K)D)
            qk, v = qkv.view(a, s, H + 2 * K, D).transpose(1, 2).split([H + K, K], 1)  # (a, ., s, D)
            q, k = _rope(qk, cos, sin).to(self.compute).split([H, K], 1)  # queries and keys rotated at once
            keys, values = cache.append(i, k, v)  # (a, K, capacity, D) compute dtype
            attn = self._attention(q, keys, values, cache.key_bias(a), start)
            x = x + self._linear(attn, layer.out, layer.out_bias)  # (a, s, H)
            gate, up = self._linear(self._norm(x, layer.norm_mlp), layer.gate_up, layer.gate_up_bias).chunk(2, -1)
            x = x + self._linear(F.silu(gate).mul_(up), layer.down, layer.down_bias)
        cache.length = start + s
        last = self._norm(x[:, -1], self.final_norm)  # (a, H)
        return self._linear(last, self.lm_head, self.lm_head_bias).float()  # (a, V)

    def _attention(self, q, keys, values, key_bias, start: int) -> torch.Tensor:
        """(a, H, s, D) queries at columns start.. over (a, K, C, D) keys; key_bias (a, C) is 0
        or -inf (left padding, columns not yet filled). Returns (a, s, H * D)."""
        a, H, s, D = q.shape
        K, C = keys.shape[1], keys.shape[2]
        if self.sliding_window is not None and start + s > self.sliding_window:
            raise ValueError(f"decoder: context {start + s} exceeds the model's sliding window {self.sliding_window}")
        if s == 1:  # decode: grouped matmuls, each KV head read once by its H/K query heads
            scores = torch.matmul(q.view(a, K, H // K, D), keys.transpose(-1, -2))  # (a, K, H/K, C)
            probs = torch.softmax(scores.float().mul_(self.scaling).add_(key_bias[:, None, None]), -1).to(values.dtype)
            return torch.matmul(probs, values).view(a, 1, H * D)  # (a, 1, H*D)
        # prefill: causal over columns, padding keys masked; a padded query attends to itself
        # (an all-masked row would be NaN, and NaN values poison valid rows through 0 * NaN)
        cols = torch.arange(C, device=q.device)
        rows = cols[start:start + s, None]  # (s, 1) column of each query
        allowed = ((cols[None] <= rows) & (key_bias[:, None] == 0)) | (cols[None] == rows)  # (a, s, C)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed[:, None], scale=self.scaling,
                                             enable_gqa=K != H)  # (a, H, s, D)
        return out.transpose(1, 2).reshape(a, s, H * D)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin  # promotes to cos's dtype, as transformers' apply_rotary_pos_emb


class KVCache:
    """Keys and values (layers, rows, kv heads, capacity, head dim): the live rows come first
    (as many as a forward passes; `select` moves them there), columns [0, length) are filled,
    the rest are zeros masked by a -inf bias. Attention reads every allocated column: a whole
    (capacity, head dim) block per row and head is what a bf16 bmm takes without copying (a
    [:length] slice would be copied at every call, results/bench/speed2.md). Capacity grows in
    blocks of GROW columns, so at most GROW - 1 masked columns are read, up to `columns` in all."""

    GROW = 64

    def __init__(self, decoder: Decoder, rows: int, columns: int, key_bias: torch.Tensor):
        self.layers, self.kv_heads, self.head_dim, self.dtype = (len(decoder.layers), decoder.kv_heads,
                                                                 decoder.head_dim, decoder.compute)
        self.length, self.max_columns, self.prompt = 0, columns, key_bias.shape[1]
        capacity = min(columns, -(-(self.prompt + 1) // self.GROW) * self.GROW)
        self.keys, self.values = self._zeros(rows, capacity), self._zeros(rows, capacity)
        self.bias = torch.full((rows, capacity), float("-inf"))  # 0: attend; -inf: padding or not yet filled
        self.bias[:len(key_bias), :self.prompt] = key_bias  # rows beyond: filled by select()

    def _zeros(self, rows: int, capacity: int) -> torch.Tensor:
        return torch.zeros(self.layers, rows, self.kv_heads, capacity, self.head_dim, dtype=self.dtype)

    def reserve(self, s: int) -> None:
        """Make room for s more columns and unmask the generated ones among them."""
        end = self.length + s
        if end > self.bias.shape[1]:
            capacity = min(self.max_columns, -(-end // self.GROW) * self.GROW)
            for name in ("keys", "values"):
                grown = self._zeros(self.keys.shape[1], capacity)
                grown[..., :self.length, :] = getattr(self, name)[..., :self.length, :]
                setattr(self, name, grown)
            self.bias = torch.cat([self.bias, self.bias.new_full((self.bias.shape[0], capacity - self.bias.shape[1]),
                                                                 float("-inf"))], 1)
        self.bias[:, max(self.length, self.prompt):end] = 0.0

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Write k, v (a, kv heads, s, D) at the next s columns; return every allocated column."""
        a, s = k.shape[0], k.shape[2]
        self.keys[layer, :a, :, self.length:self.length + s] = k
        self.values[layer, :a, :, self.length:self.length + s] = v
        return self.keys[layer, :a], self.values[layer, :a]

    def key_bias(self, a: int) -> torch.Tensor:
        return self.bias[:a]

    def select(self, rows: torch.Tensor) -> None:
        """Keep `rows` (in this order) as the live rows: expand shared prompts, drop finished rows.
        Columns from `length` on are zero in every row, so only the filled ones move."""
        n, end = len(rows), self.length
        self.keys[:, :n, :, :end] = self.keys[:, rows, :, :end]
        self.values[:, :n, :, :end] = self.values[:, rows, :, :end]
        self.bias[:n] = self.bias[rows]


_DECODERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# Optimizer steps taken in this process. Fused AdamW updates the weights without bumping their
# version counters, so a snapshot is also stale after any optimizer step.
_OPTIMIZER_STEPS = [0]
register_optimizer_step_post_hook(
    lambda *_: _OPTIMIZER_STEPS.__setitem__(0, _OPTIMIZER_STEPS[0] + 1))


def decoder_for(model) -> Decoder | None:
    """The model's Decoder, rebuilt only when a weight may have changed (an optimizer step
    anywhere, or an in-place write such as load_state_dict, which bumps the tensors' version
    counters), or None when the model must use transformers' path."""
    model = getattr(model, "module", model)  # DistributedDataParallel
    if _unsupported(model) is not None:
        return None
    version = (_OPTIMIZER_STEPS[0], *(p._version for p in model.parameters()))
    cached = _DECODERS.get(model)
    if cached is None or cached[0] != version:
        _DECODERS.pop(model, None)  # free the old snapshot before building the new one
        cached = (version, Decoder(model))
        _DECODERS[model] = cached
    return cached[1]


# ---------------------------------------------------------------------------------------------
# sampling and the decode loop
# ---------------------------------------------------------------------------------------------


def next_tokens(logits: torch.Tensor, greedy: bool, temperature: float, top_p: float) -> torch.Tensor:
    """One token per row from softmax(logits / T), top-p filtered; argmax when greedy."""
    return logits.argmax(-1) if greedy else sample(logits, temperature, top_p)[0]  # (n,)


def sample(logits: torch.Tensor, temperature: float, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row from softmax(logits / T), top-p filtered, and its log-prob under
    softmax(logits / T) before the filter: the number the trainer computes for it (as vLLM reports)."""
    full = torch.softmax(logits.float() / temperature, -1)  # (n, V)
    probs = full
    if top_p < 1.0:  # keep the smallest set of top tokens whose mass reaches top_p
        sorted_p, order = probs.sort(-1, descending=True)
        outside = sorted_p.cumsum(-1) - sorted_p >= top_p  # (n, V) mass before the token already >= p
        probs = probs.scatter(-1, order, sorted_p.masked_fill(outside, 0.0))
    cdf = probs.cumsum(-1)  # (n, V)
    u = torch.rand(cdf.shape[0], 1, device=cdf.device) * cdf[:, -1:]  # (n, 1) inverse-CDF draw
    token = torch.searchsorted(cdf, u).squeeze(-1).clamp(max=cdf.shape[1] - 1)  # (n,)
    return token, full.gather(-1, token[:, None]).squeeze(-1).log()  # (n,), (n,)


@torch.no_grad()
def generate_rows(decoder: Decoder, ids: torch.Tensor, mask: torch.Tensor, which: torch.Tensor,
                  max_new_tokens: int, eos: list[int], pad_id: int, greedy: bool, temperature: float = 1.0,
                  top_p: float = 1.0, on_done: Callable[[int], None] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Completion ids (n, T) of left-padded prompts ids/mask (n, P), pad after EOS, and when
    sampling the log-prob of each sampled token (n, T), 0 after EOS (`sample`); None when greedy.

    `which` (n,) names each row's prompt, groups contiguous: each distinct prompt is prefilled
    once and its cache rows repeated for its group. A row stops at its first EOS; finished
    rows leave the batch once they are a quarter of it (a compaction copies the cache).
    With `eos` empty every row runs to the limit (calibration). `on_done(k)` is told whenever k
    rows have finished (progress bars), and that all n have when the loop ends."""
    n, P = ids.shape
    _, inverse, counts = which.unique_consecutive(return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts  # (k,) first row of each distinct prompt
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)  # (n, P) positions skip left padding
    bias = torch.zeros(len(first), P).masked_fill_(mask[first] == 0, float("-inf"))  # (k, P) left padding
    cache = KVCache(decoder, n, P + max_new_tokens, bias)
    logits = decoder.forward(ids[first], pos[first], cache)  # (k, V)
    if len(first) < n:
        cache.select(inverse)
        logits = logits[inverse]  # (n, V): each row samples its own first token
    out = torch.full((n, max_new_tokens), pad_id, dtype=torch.long)
    out_logp = None if greedy else torch.zeros(n, max_new_tokens)
    alive = torch.arange(n)  # output row of each live cache row
    finished = torch.zeros(n, dtype=torch.bool)  # live rows that already emitted EOS
    next_pos = pos[:, -1] + 1  # (n,)
    eos_t = torch.tensor(eos, dtype=torch.long)
    T = 0
    for t in range(max_new_tokens):
        if greedy:
            token = logits.argmax(-1)  # (a,)
        else:
            token, logp = sample(logits, temperature, top_p)  # (a,), (a,)
            out_logp[alive[~finished], t] = logp[~finished]
        out[alive[~finished], t] = token[~finished]
        T = t + 1
        newly = torch.isin(token, eos_t) & ~finished
        finished |= newly
        if on_done is not None and bool(newly.any()):
            on_done(int(newly.sum()))
        if bool(finished.all()) or t == max_new_tokens - 1:
            break
        dead = int(finished.sum())
        if dead and 4 * dead >= len(alive):
            keep = (~finished).nonzero().squeeze(-1)  # (a',)
            cache.select(keep)
            alive, token, next_pos, finished = alive[keep], token[keep], next_pos[keep], finished[keep]
        logits = decoder.forward(token[:, None], next_pos[:, None], cache)  # (a, V)
        next_pos = next_pos + 1
    if on_done is not None and not bool(finished.all()):
        on_done(int((~finished).sum()))  # rows cut at the limit
    return out[:, :T], None if greedy else out_logp[:, :T]
