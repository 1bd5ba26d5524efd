"""Rollout backends: prompts in, a Batch of G completions per prompt out.

`hf` (default) decodes in-process, batched over all rows, with a KV cache, stopping each row
at its EOS. Each distinct prompt is tokenised once and repeated G times, so groups are
contiguous (row i belongs to prompt i // G), and prefilled once per group, its KV cache
repeated G times. Sampling is plain softmax(logits / temperature) with top-p and no top-k or
repetition penalty (inverse CDF: one uniform draw per row), so the log-probs the trainer
recomputes are those of the distribution that was actually sampled.

Two engines run that loop. Llama-family models on a CPU (SmolLM2, Qwen2, Mistral) go through
mathrl.engine.decoder: weights cast and pre-packed once per weight version, a block-allocated KV
cache, finished rows dropped in bulk (results/bench/README.md, "Speed II"). Everything else
goes through the transformers model (`decode`): per-token forwards with the shared prompt's
cache, single-query attention as two grouped matmuls (engine.attention) instead of SDPA's
CPU kernel, a row leaving the batch at its EOS; an FSDP-sharded model decodes with
`generate()`, which keeps all ranks stepping together (`synced_generate`). Greedy decoding
equals `generate()`'s token for token on both in float32 (tests/test_rollout.py,
tests/test_decoder.py).
"""

from __future__ import annotations

from typing import Callable

import torch
from transformers.modeling_outputs import CausalLMOutputWithPast

from mathrl.engine.attention import DECODE_ATTENTION, instead_of_sdpa
from mathrl.engine.decoder import decoder_for, generate_rows, next_tokens
from mathrl.models import compute_precision
from mathrl.types import Batch, Problem

# transformers 5.2x renamed the KV-cache argument and output field `past_key_values` to
# `cache`; the old name still works there but warns on every generate call. Use whichever
# name the installed version defines (pyproject allows both sides of the rename).
CACHE_KEY = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


def render_prompt(tokenizer, problem: Problem) -> str:
    """Chat problems go through the tokenizer's chat template; plain ones are used as is."""
    if problem.messages is not None:
        return tokenizer.apply_chat_template(problem.messages, add_generation_prompt=True, tokenize=False)
    if problem.prompt is None:
        raise ValueError(f"problem {problem.id} has neither messages nor prompt")
    return problem.prompt


def encode_prompts(tokenizer, problems: list[Problem]) -> list[list[int]]:
    # add_special_tokens=False: chat templates already carry BOS where the model wants one.
    texts = [render_prompt(tokenizer, p) for p in problems]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row):] = 1
    return ids, mask  # (n, P), (n, P)


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as generate() uses them."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (n, L)


def shared_prompt_cache(model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, which: torch.Tensor) -> dict:
    """decode() kwargs with the KV cache of prompts[which][:, :-1], each distinct prompt run once.

    `which` (n,) is the prompt of each row, groups contiguous. The last prompt column is left
    to decode(), whose first forward then yields the logits of the first sampled token."""
    if prompt_ids.shape[1] < 2 or len(which) == len(which.unique_consecutive()):
        return {}  # nothing to share
    prompts, inverse = which.unique_consecutive(return_inverse=True)  # (k,), (n,)
    ids, mask = prompt_ids[prompts, :-1], prompt_mask[prompts, :-1]  # (k, P-1)
    cache = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask), use_cache=True,
                  logits_to_keep=1)[CACHE_KEY]
    cache.batch_select_indices(inverse.to(ids.device))  # (k, ...) -> (n, ...)
    return {CACHE_KEY: cache}


def eos_ids(model, tokenizer) -> list[int]:
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return sorted(i for i in ids if i is not None)


def completion_mask_after_eos(completion_ids: torch.Tensor, eos: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask = 1 up to and including the first EOS; rows without EOS are truncated."""
    is_eos = torch.isin(completion_ids, torch.tensor(eos, device=completion_ids.device))  # (N, T)
    seen_before = (is_eos.cumsum(-1) - is_eos.long()) > 0  # (N, T) an EOS at an earlier position
    mask = (~seen_before).float()  # (N, T)
    truncated = ~is_eos.any(-1)  # (N,)
    return mask, truncated


def decode_completions(tokenizer, completion_ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
    rows = [ids[: int(m.sum())].tolist() for ids, m in zip(completion_ids, mask)]
    return tokenizer.batch_decode(rows, skip_special_tokens=True)


# ---------------------------------------------------------------------------------------------
# the decode loop
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def decode(model, ids: torch.Tensor, mask: torch.Tensor, max_new_tokens: int, eos: list[int], pad_id: int,
           greedy: bool, temperature: float = 1.0, top_p: float = 1.0, shared: dict | None = None) -> torch.Tensor:
    """Completion ids (n, T) of left-padded prompts `ids`/`mask` (n, P), pad after EOS.

    `shared` holds the KV cache of ids[:, :-1] (shared_prompt_cache), else the prompts are
    prefilled here. A row leaves the batch (and the cache) at its first EOS, so the loop runs
    until the longest completion ends and every step computes only unfinished rows."""
    n = ids.shape[0]
    out = torch.full((n, max_new_tokens), pad_id, dtype=torch.long, device=ids.device)
    pos = position_ids(mask)  # (n, P)
    start = ids.shape[1] - 1 if shared else 0
    step_ids, step_pos, cache = ids[:, start:], pos[:, start:], (shared or {}).get(CACHE_KEY)
    alive = torch.arange(n, device=ids.device)  # rows still decoding
    eos_t = torch.tensor(eos, device=ids.device)
    T = 0
    with instead_of_sdpa(model.config, DECODE_ATTENTION):
        for t in range(max_new_tokens):
            result = model(input_ids=step_ids, attention_mask=mask, position_ids=step_pos, use_cache=True,
                           logits_to_keep=1, **{CACHE_KEY: cache})
            cache = result[CACHE_KEY]
            token = next_tokens(result.logits[:, -1], greedy, temperature, top_p)  # (a,)
            out[alive, t] = token
            T = t + 1
            running = ~torch.isin(token, eos_t)  # (a,)
            if not bool(running.all()):
                if not bool(running.any()):
                    break
                keep = running.nonzero().squeeze(-1)  # (a',)
                cache.batch_select_indices(keep)
                alive, token, mask, step_pos = alive[keep], token[keep], mask[keep], step_pos[keep]
            step_ids = token[:, None]  # (a, 1)
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)  # (a, L + 1)
            step_pos = step_pos[:, -1:] + 1  # (a, 1)
    return out[:, :T]


def synced_generate(model, ids, mask, max_new_tokens: int, eos: list[int], pad_id: int, greedy: bool,
                    temperature: float, top_p: float, shared: dict) -> torch.Tensor:
    """transformers' generate() for an FSDP-sharded model: every forward all-gathers the
    parameter shards, so every rank must keep stepping until all ranks are done, which
    generate() does (synced_gpus) and `decode`, which stops at this rank's last EOS, does not."""
    from transformers import GenerationConfig

    sampling = dict(do_sample=False) if greedy else dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
    config = GenerationConfig(max_new_tokens=max_new_tokens, pad_token_id=pad_id, eos_token_id=eos,
                              repetition_penalty=1.0, **sampling)
    return model.generate(input_ids=ids, attention_mask=mask, generation_config=config, **shared)[:, ids.shape[1]:]


def _transformers_decode(model, ids, mask, which, distinct_ids, distinct_mask, max_new_tokens: int, eos: list[int],
                        pad_id: int, greedy: bool, temperature: float, top_p: float) -> torch.Tensor:
    """One chunk through the transformers model, for what mathrl.engine.decoder does not cover."""
    with compute_precision(model):  # one context per chunk: weights cast to bf16 once
        shared = shared_prompt_cache(model, distinct_ids, distinct_mask, which)
        if getattr(model, "_is_fsdp_managed_module", False):  # distributed.mark_sharded_for_generation
            return synced_generate(model, ids, mask, max_new_tokens, eos, pad_id, greedy, temperature, top_p, shared)
        return decode(model, ids, mask, max_new_tokens, eos, pad_id, greedy, temperature, top_p, shared)


@torch.no_grad()
def hf_generate(model, tokenizer, problems: list[Problem], group_size: int, max_new_tokens: int,
                temperature: float = 1.0, top_p: float = 1.0, greedy: bool = False,
                max_rows: int = 64, on_rows: Callable[[int], None] | None = None) -> Batch:
    """Sample `group_size` completions for each problem (greedy: the argmax path).

    Rows are decoded in chunks of at most `max_rows` (memory), each chunk in one batched
    decode loop with a KV cache; chunks are right-padded to the longest completion.
    `on_rows(n)` is told of finished rows (progress bars): as they finish with mathrl.engine.decoder,
    after each chunk on the transformers path.
    """
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id
    eos = eos_ids(model, tokenizer)
    prompt_rows = encode_prompts(tokenizer, problems)
    distinct_ids, distinct_mask = left_pad(prompt_rows, pad_id)  # (B, P)
    prompt_ids = distinct_ids.repeat_interleave(group_size, 0)  # (N, P)
    prompt_mask = distinct_mask.repeat_interleave(group_size, 0)  # (N, P)
    decoder = decoder_for(model)  # mathrl's own engine where the architecture allows it
    chunks, logp_chunks = [], []
    for start in range(0, prompt_ids.shape[0], max_rows):
        ids = prompt_ids[start:start + max_rows].to(device)
        mask = prompt_mask[start:start + max_rows].to(device)
        which = torch.arange(start, start + ids.shape[0]) // group_size  # (n,) prompt of each row
        if decoder is not None:  # reports rows as they finish
            out, logp = generate_rows(decoder, ids, mask, which, max_new_tokens, eos, pad_id, greedy, temperature,
                                      top_p, on_done=on_rows)
            logp_chunks.append(logp)
        else:
            out = _transformers_decode(model, ids, mask, which, distinct_ids.to(device), distinct_mask.to(device),
                                       max_new_tokens, eos, pad_id, greedy, temperature, top_p)
            if on_rows is not None:
                on_rows(ids.shape[0])
        chunks.append(out.cpu())  # (n, T_chunk)
    width = max(c.shape[1] for c in chunks)
    completion_ids = torch.cat([torch.nn.functional.pad(c, (0, width - c.shape[1]), value=pad_id) for c in chunks])
    completion_mask, truncated = completion_mask_after_eos(completion_ids, eos)  # (N, T), (N,)
    completion_ids = torch.where(completion_mask.bool(), completion_ids, pad_id)  # (N, T)
    input_ids = torch.cat([prompt_ids, completion_ids], 1)  # (N, P+T)
    attention_mask = torch.cat([prompt_mask, completion_mask.long()], 1)  # (N, P+T)
    sample_logprobs = None  # the built-in engine reports what it sampled with; transformers' path does not
    if logp_chunks and logp_chunks[0] is not None:
        sample_logprobs = torch.cat([torch.nn.functional.pad(c, (0, width - c.shape[1])) for c in logp_chunks])
        sample_logprobs = (sample_logprobs * completion_mask).to(device)  # (N, T)
    return Batch(
        input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
        completion_mask=completion_mask.to(device), prompt_len=prompt_ids.shape[1],
        truncated=truncated.to(device),
        completions=decode_completions(tokenizer, completion_ids, completion_mask),
        problems=[p for p in problems for _ in range(group_size)], group_size=group_size,
        prompt_tokens=int(prompt_mask.sum()), sample_logprobs=sample_logprobs,
    )


def teacher_forced_batch(tokenizer, problems: list[Problem], targets: list[str], device) -> Batch:
    """A Batch whose completions are given texts (SFT targets), each terminated by EOS."""
    prompt_ids, prompt_mask = left_pad(encode_prompts(tokenizer, problems), tokenizer.pad_token_id)
    target_rows = [t + [tokenizer.eos_token_id] for t in tokenizer(targets, add_special_tokens=False)["input_ids"]]
    width = max(len(r) for r in target_rows)
    completion_ids = torch.full((len(target_rows), width), tokenizer.pad_token_id, dtype=torch.long)
    completion_mask = torch.zeros((len(target_rows), width))
    for i, row in enumerate(target_rows):
        completion_ids[i, :len(row)] = torch.tensor(row)
        completion_mask[i, :len(row)] = 1
    return Batch(
        input_ids=torch.cat([prompt_ids, completion_ids], 1).to(device),
        attention_mask=torch.cat([prompt_mask, completion_mask.long()], 1).to(device),
        completion_mask=completion_mask.to(device), prompt_len=prompt_ids.shape[1],
        truncated=torch.zeros(len(targets), dtype=torch.bool, device=device),
        completions=list(targets), problems=list(problems), group_size=1,
        prompt_tokens=int(prompt_mask.sum()),
    )


# Backend factories: each run builds its own (the vLLM one holds an engine and its weights).
# "vllm" is registered by mathrl/rollout_vllm.py's factory in run_state (it comes later in the
# data flow and imports vllm only when a run asks for it).
ROLLOUTS: dict[str, Callable[[], Callable[..., Batch]]] = {"hf": lambda: hf_generate}


def merge_groups(groups: list[tuple[Batch, int]], pad_id: int) -> Batch:
    """A new Batch made of whole groups (batch, group index) taken from several batches.

    Prompts are re-left-padded and completions re-right-padded to the widest among them."""
    rows = [(b, r) for b, g in groups for r in range(g * b.group_size, (g + 1) * b.group_size)]
    P = max(b.prompt_len for b, _ in rows)
    T = max(b.input_ids.shape[1] - b.prompt_len for b, _ in rows)

    def stack(part: str, value) -> torch.Tensor:
        out = []
        for b, r in rows:
            t = getattr(b, part)[r]
            prompt, completion = t[: b.prompt_len], t[b.prompt_len:]
            out.append(torch.cat([torch.nn.functional.pad(prompt, (P - prompt.shape[0], 0), value=value),
                                  torch.nn.functional.pad(completion, (0, T - completion.shape[0]), value=value)]))
        return torch.stack(out)  # (N, P+T)

    completion_mask = torch.stack([torch.nn.functional.pad(b.completion_mask[r], (0, T - b.completion_mask.shape[1]))
                                   for b, r in rows])  # (N, T)
    first = rows[0][0]
    attention_mask = stack("attention_mask", 0)  # (N, P+T)
    return Batch(
        input_ids=stack("input_ids", pad_id), attention_mask=attention_mask,
        prompt_tokens=int(attention_mask[:, :P].sum()),
        completion_mask=completion_mask, prompt_len=P,
        truncated=torch.stack([b.truncated[r] for b, r in rows]),
        completions=[b.completions[r] for b, r in rows], problems=[b.problems[r] for b, r in rows],
        group_size=first.group_size,
        rewards=None if first.rewards is None else torch.stack([b.rewards[r] for b, r in rows]),
        grades=[b.grades[r] for b, r in rows] if all(b.grades for b, _ in rows) else [],
        sample_logprobs=None if any(b.sample_logprobs is None for b, _ in rows) else torch.stack(
            [torch.nn.functional.pad(b.sample_logprobs[r], (0, T - b.sample_logprobs.shape[1])) for b, r in rows]),
    )
