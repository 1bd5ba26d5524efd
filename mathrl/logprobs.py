"""Per-token log-probs of completion tokens under a policy, old policy or reference.

Only completion positions reach the LM head (`logits_to_keep`), so the (N, L, V) logits of
the prompt are never materialised; rows are processed in chunks of `micro_batch_size`.
Log-probs are taken at the sampling temperature: the rollout sampled from
softmax(logits / T), and the ratio and KL terms must be of that same distribution. The model
runs in its compute precision (bf16 autocast on a CPU mixed-precision model); the
log-softmax over the vocabulary is always float32.

Three savings, all exact up to float rounding (tests/test_bench.py and tests/test_packing.py
check values and gradients):
  * prefix sharing: the G rows of a group share their prompt, so a chunk runs each distinct
    prompt once (with a KV cache, under grad when training) and only the completions on top.
    Prompts are most of the tokens of short-answer math RL (57 prompt vs <= 32 completion
    tokens per row on the arithmetic task).
  * packing (mathrl.engine.packing): those completions run back to back in one sequence per prompt,
    so no matmul sees a padding column; where packing cannot stand in for the model's
    attention, they run as a padded batch on the prompt's cache repeated per row.
  * trailing padding: a chunk's columns after its longest completion are never computed.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from mathrl.models import compute_precision
from mathrl.engine.packing import EAGER_MAX_COLUMNS, can_pack, pack, packed_forward
from mathrl.engine.attention import instead_of_sdpa
from mathrl.rollout import CACHE_KEY, position_ids


def forward_completion(model, input_ids, attention_mask, prompt_len: int, temperature: float = 1.0,
                       with_entropy: bool = False, value_head=None,
                       entropy_grad: bool = True) -> dict[str, torch.Tensor]:
    """One chunk: log-probs (and optionally entropy, values) of completion tokens, with grad.

    Token t of the completion sits at column prompt_len + t and is predicted by the logits at
    column prompt_len + t - 1; values V(s_t) come from the hidden state at that same column.
    Padding columns come back as zeros where they were not computed (packed or trimmed).
    `entropy_grad=False` computes the entropy as a logged number only (no graph through its
    (m, V) softmax): what the update does unless entropy_coef puts it in the loss.
    """
    n, T = input_ids.shape[0], input_ids.shape[1] - prompt_len
    width = max(int(attention_mask[:, prompt_len:].sum(-1).max()), 1)  # the rest is padding
    ids, mask = input_ids[:, :prompt_len + width], attention_mask[:, :prompt_len + width]
    with compute_precision(model), short_sequence_attention(model, ids):  # bf16 matmuls on a CPU mixed-precision model
        logits, hidden, where = _predicting_logits(model, ids, mask, prompt_len, value_head is not None)  # (m, V)
    # at least fp32 (bf16 log-softmax is too coarse for ratios); fp64 stays fp64 (exactness tests)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32)) / temperature  # (m, V)
    # one fused log-softmax rather than logsumexp's max / subtract / exp / sum (results/bench/speed5.md)
    log_q = torch.log_softmax(logits, -1)  # (m, V)
    targets = ids[:, prompt_len:].reshape(-1)[where]  # (m,) the token each row of logits predicts
    result = {"logp": log_q.gather(-1, targets[:, None]).squeeze(-1)}  # (m,)
    if with_entropy:
        with torch.set_grad_enabled(torch.is_grad_enabled() and entropy_grad):
            result["entropy"] = -(log_q.exp() * log_q).sum(-1)  # (m,)  H = -sum_v q_v log q_v
    if value_head is not None:
        result["values"] = value_head(hidden)  # (m,)
    return {k: torch.nn.functional.pad(v.new_zeros(n * width).index_put((where,), v).view(n, width), (0, T - width))
            for k, v in result.items()}  # (n, T)


@contextmanager
def short_sequence_attention(model, ids: torch.Tensor):
    """Eager (matmul-softmax-matmul) attention instead of SDPA for short sequences on a CPU,
    where SDPA's flash kernel is the slower one (results/bench/speed2.md); its L^2 score tensors
    leave long sequences to SDPA. Every log-prob pass goes through here, so policy, old policy
    and reference compute alike."""
    config = getattr(getattr(model, "module", model), "config", None)
    if (config is None or ids.device.type != "cpu" or ids.shape[1] > EAGER_MAX_COLUMNS
            or next(model.parameters()).dtype == torch.float64):  # eager's softmax is float32
        yield
        return
    with instead_of_sdpa(config, "eager"):
        yield


def _predicting_logits(model, ids, mask, prompt_len: int, with_hidden: bool):
    """Logits (and last hidden states) at the columns that predict completion tokens,
    prompt_len - 1 .. L - 2, as rows (m, V), (m, H) or None, and where (m,) each row's
    prediction goes in the (n, L - prompt_len) completion grid (flat index)."""
    n, width = ids.shape[0], ids.shape[1] - prompt_len
    pos = position_ids(mask)  # (n, L)
    prompts, inverse = torch.unique(torch.cat([ids[:, :prompt_len], mask[:, :prompt_len]], 1), dim=0,
                                    return_inverse=True)
    # Under FSDP every forward all-gathers the parameter shards, so all ranks must make the same
    # number of calls; the shared path makes one or two depending on this rank's completions.
    sharded = getattr(model, "_is_fsdp_managed_module", False)  # set by distributed.mark_sharded_for_generation
    if prompt_len == 0 or len(prompts) == len(ids) or sharded:  # one plain forward (nothing shared)
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=width + 1,
                    output_hidden_states=with_hidden, use_cache=False)
        hidden = out.hidden_states[-1][:, prompt_len - 1:-1].reshape(n * width, -1) if with_hidden else None
        return out.logits[:, :-1].reshape(n * width, -1), hidden, torch.arange(n * width, device=ids.device)
    # one row per distinct prompt (any of its rows: they are identical up to the completion)
    first = torch.empty(len(prompts), dtype=torch.long, device=ids.device).scatter_(
        0, inverse, torch.arange(len(ids), device=ids.device))  # (k,)
    pre = model(input_ids=ids[first, :prompt_len], attention_mask=mask[first, :prompt_len],
                position_ids=pos[first, :prompt_len], logits_to_keep=1, output_hidden_states=with_hidden,
                use_cache=True)
    logits = [pre.logits[inverse, -1]]  # (n, V): predicts completion token 0
    hidden = [pre.hidden_states[-1][inverse, -1]] if with_hidden else []  # (n, H)
    where = [torch.arange(n, device=ids.device) * width]
    if width > 1:  # the completion's own columns predict tokens 1 .. w-1
        cache = pre[CACHE_KEY]
        config = getattr(model, "module", model).config
        inputs = dict(output_hidden_states=with_hidden, use_cache=True, **{CACHE_KEY: cache})
        # (n, w-1)
        grid = torch.arange(n, device=ids.device)[:, None] * width + torch.arange(1, width, device=ids.device)
        if ids.device.type == "cpu" and can_pack(config, mask[:, prompt_len:]):  # no padding columns
            layout = pack(inverse, len(prompts), ids[:, prompt_len:-1], pos[:, prompt_len:-1], mask[:, :prompt_len],
                          mask[:, prompt_len + 1:].sum(-1))
            with packed_forward(config, layout):
                out = model(input_ids=layout.ids, position_ids=layout.positions, **inputs)  # (k, S, V)
            rows = layout.slot[layout.real]  # (m',) packed slots of the real columns
            where.append(grid[layout.real])
        else:  # every row runs to the chunk's longest completion on the prompt's repeated cache
            cache.batch_select_indices(inverse)  # (k, ...) -> (n, ...), differentiable
            out = model(input_ids=ids[:, prompt_len:-1], attention_mask=mask[:, :-1],
                        position_ids=pos[:, prompt_len:-1], **inputs)  # (n, w - 1, V)
            rows = slice(None)  # every column
            where.append(grid.flatten())
        logits.append(out.logits.flatten(0, 1)[rows])  # (m', V) the real columns' predictions
        hidden += [out.hidden_states[-1].flatten(0, 1)[rows]] if with_hidden else []
    return torch.cat(logits), torch.cat(hidden) if with_hidden else None, torch.cat(where)


@torch.no_grad()
def completion_logprobs(model, batch, temperature: float = 1.0, micro_batch_size: int = 8,
                        value_head=None) -> dict[str, torch.Tensor]:
    """No-grad log-probs (and values) for a whole Batch, chunked over rows."""
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, batch.size, micro_batch_size):
        rows = slice(start, start + micro_batch_size)
        chunk = forward_completion(model, batch.input_ids[rows], batch.attention_mask[rows], batch.prompt_len,
                                   temperature, value_head=value_head)
        for key, value in chunk.items():
            parts.setdefault(key, []).append(value)
    return {key: torch.cat(values) * batch.completion_mask for key, values in parts.items()}  # (N, T)
