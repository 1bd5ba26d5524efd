"""FLOPs, tokens and seconds: the cost side of every accuracy number.

FLOP convention (Kaplan et al. 2020, Sec. 2.1; the "C = 6ND" of Hoffmann et al. 2022):

    forward   = 2 * N * tokens        one multiply-add per parameter per token
    training  = 6 * N * tokens        forward (2N) + backward (4N: grads of inputs and weights)

N is `flop_params(model)`: the parameters that take part in a matrix multiply per token.
  * The input embedding table is excluded, as in Kaplan: it is a lookup (a gather), not a
    matmul, so it costs ~0 FLOPs however large it is. Positional embedding tables likewise.
  * Deviation from Kaplan: the output head (unembedding, d_model x vocab) is included. It is
    a real matmul on every token, and for small models with big vocabularies it is a large
    share of the work (SmolLM2-135M: 576 x 49152 = 28M of ~135M parameters). With tied
    embeddings the shared matrix is therefore counted once, as the head.
  * Omitted, as in C = 6ND: the attention-over-context term (2 * n_layer * n_ctx * d_attn
    per token). For SmolLM2-135M at a 1k context it is ~13% of 2N. Every algorithm shares the
    omission, so comparisons between runs are unaffected; absolute utilisation is understated.
  * Tokens are real (unpadded) tokens. Padding costs wall time, not useful FLOPs, and the
    count then does not depend on the backend's batching (vLLM does not pad, HF does).

What an RL step must add (count only the passes that actually run):
  rollout        generation_flops(N, prompt tokens, generated tokens): the prompt is
                 prefilled once and each generated token is decoded once (KV cache).
  reference      forward_flops(N_ref, prompt + completion tokens) for the KL reference pass.
  old_logprobs   forward_flops(N, prompt + completion tokens), unless the rollout engine's
                 own log-probs are used or old == current (one epoch, on-policy).
  update         train_flops(N, tokens) for every forward/backward, per epoch and minibatch;
                 the tokens are all that the forward processes (prompt + completion), not
                 just the completion tokens the loss is masked to.
  PPO critic     a value head on the policy trunk is inside N (d_model params: negligible).
                 A separate critic adds forward_flops(N_critic, ...) for the value pass on the
                 rollout and train_flops(N_critic, ...) for its own update.
  eval           generation_flops of the eval rollouts, reported separately from training.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

# Always reported (0.0 when unused) so every row of metrics.jsonl has the same columns.
PHASES = ("rollout", "reward", "reference", "old_logprobs", "update", "eval")
TOKEN_KINDS = ("prompt", "generated", "trained")
_PHASE_NAME = re.compile(r"[a-z][a-z0-9_]*")


def forward_flops(n_params: int, tokens: int) -> float:
    """FLOPs of one forward pass over `tokens` tokens: 2 * N * tokens."""
    return 2.0 * n_params * tokens


def train_flops(n_params: int, tokens: int) -> float:
    """FLOPs of forward + backward over `tokens` tokens: 6 * N * tokens."""
    return 6.0 * n_params * tokens


def generation_flops(n_params: int, prompt_tokens: int, generated_tokens: int) -> float:
    """FLOPs of sampling with a KV cache: prefill the prompt, then one forward per new token."""
    return forward_flops(n_params, prompt_tokens) + forward_flops(n_params, generated_tokens)


def flop_params(model: Any) -> int:
    """N of the module docstring: all parameters minus the input (and positional) embeddings.

    Works on any torch module with Hugging Face's get_input_embeddings/get_output_embeddings;
    a module without them (e.g. a bare value head) counts in full. Shared tensors count once.
    """
    params = {id(p): p.numel() for p in model.parameters()}
    excluded: set[int] = set()
    get_in = getattr(model, "get_input_embeddings", None)
    emb = get_in() if callable(get_in) else None
    if emb is not None:
        excluded.update(id(p) for p in emb.parameters())
    get_out = getattr(model, "get_output_embeddings", None)
    head = get_out() if callable(get_out) else None
    if head is not None:  # tied head: the shared matrix is a matmul after all
        excluded.difference_update(id(p) for p in head.parameters())
    for name, p in model.named_parameters():
        # learned absolute positions (GPT-2 "wpe", BERT-style) are lookups too
        if re.search(r"(^|\.)(wpe|position_embeddings|embed_positions)\.", name):
            excluded.add(id(p))
    return sum(n for pid, n in params.items() if pid not in excluded)


class ComputeMeter:
    """Per-step and cumulative wall seconds (by phase), tokens and FLOPs of a training run.

    The step clock starts at the first `phase()` or `add_*` call after the previous
    `step_metrics()`, so model loading, logging and checkpoint writing between steps are not
    charged to any step; `time/other_s` is step time spent outside every phase.

    With a CUDA device, phases synchronize on entry and exit so that queued kernels are
    charged to the phase that launched them (without it, an asynchronous update looks free
    and the next phase looks slow), and CUDA events measure `time/device_s`.
    """

    def __init__(self, device: Any = None, clock: Callable[[], float] = time.perf_counter, n_params: int = 0):
        self._clock = clock
        self._cuda = str(device).startswith("cuda") if device is not None else False
        self.n_params = n_params  # flop_params of the policy, for the add_* passes below
        self.cumulative_s = 0.0
        self.cumulative_flops = 0.0
        self.cumulative_tokens = {k: 0 for k in TOKEN_KINDS}
        self.steps = 0
        self._reset_step()

    def _reset_step(self) -> None:
        self._step_start: float | None = None
        self._phase_s: dict[str, float] = {}
        self._tokens = {k: 0 for k in TOKEN_KINDS}
        self._flops = 0.0
        self._events: list[tuple[Any, Any]] = []
        self._open: set[str] = set()

    def _touch(self) -> None:
        if self._step_start is None:
            self._step_start = self._clock()

    def _sync(self) -> None:
        if self._cuda:
            torch.cuda.synchronize()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charge the wall seconds of the `with` body to phase `name`."""
        if not _PHASE_NAME.fullmatch(name):
            raise ValueError(f"phase name must be lower_snake_case, got {name!r}")
        if name in self._open:  # re-entering would count the inner seconds twice
            raise RuntimeError(f"phase {name!r} is already open")
        self._touch()
        self._open.add(name)
        self._sync()
        start_evt = None
        if self._cuda:
            start_evt = torch.cuda.Event(enable_timing=True)
            start_evt.record()
        t0 = self._clock()
        try:
            yield
        finally:
            if self._cuda:
                end_evt = torch.cuda.Event(enable_timing=True)
                end_evt.record()
                self._events.append((start_evt, end_evt))
            self._sync()
            self._phase_s[name] = self._phase_s.get(name, 0.0) + self._clock() - t0
            self._open.discard(name)

    def add_tokens(self, kind: str, n: int) -> None:
        """Count `n` real tokens of `kind` (prompt, generated or trained) in this step."""
        if kind not in self._tokens:
            raise ValueError(f"token kind must be one of {TOKEN_KINDS}, got {kind!r}")
        if n < 0:
            raise ValueError(f"token count must be >= 0, got {n}")
        self._touch()
        self._tokens[kind] += int(n)

    def add_flops(self, n: float) -> None:
        """Count `n` FLOPs in this step (see the module docstring for what to count)."""
        if n < 0:
            raise ValueError(f"FLOPs must be >= 0, got {n}")
        self._touch()
        self._flops += float(n)

    # ---- the model passes of a step: the only place a run counts its FLOPs -----------------
    def add_generation(self, batch) -> None:
        """Sampling `batch` (a types.Batch) with a KV cache."""
        self.add_flops(generation_flops(self.n_params, batch.prompt_tokens, int(batch.completion_mask.sum())))

    def add_forward(self, batch) -> None:
        """One no-grad pass over every real token of `batch`."""
        self.add_flops(forward_flops(self.n_params, int(batch.attention_mask.sum())))

    def add_training(self, batch, epochs: int) -> None:
        """`epochs` forward + backward passes over every real token of `batch`."""
        self.add_flops(train_flops(self.n_params, int(batch.attention_mask.sum())) * epochs)

    def step_metrics(self) -> dict[str, float]:
        """This step's and the cumulative values, namespaced; then start a new step."""
        if self._open:
            raise RuntimeError(f"step_metrics() inside open phases {sorted(self._open)}")
        step_s = 0.0 if self._step_start is None else self._clock() - self._step_start
        self.cumulative_s += step_s
        self.cumulative_flops += self._flops
        for k, n in self._tokens.items():
            self.cumulative_tokens[k] += n
        self.steps += 1

        out: dict[str, float] = {}
        for name in (*PHASES, *sorted(set(self._phase_s) - set(PHASES))):
            out[f"time/{name}_s"] = self._phase_s.get(name, 0.0)
        out["time/other_s"] = max(0.0, step_s - sum(self._phase_s.values()))
        out["time/step_s"] = step_s
        out["time/cumulative_s"] = self.cumulative_s
        if self._cuda:
            self._sync()  # elapsed_time needs both events completed
            out["time/device_s"] = sum(a.elapsed_time(b) for a, b in self._events) / 1000.0
        for k in TOKEN_KINDS:
            out[f"tokens/{k}"] = self._tokens[k]
        for k in TOKEN_KINDS:
            out[f"tokens/cumulative_{k}"] = self.cumulative_tokens[k]
        out["flops/step"] = self._flops
        out["flops/cumulative"] = self.cumulative_flops
        self._reset_step()
        return out

    def state_dict(self) -> dict[str, Any]:
        """Cumulative counters, for checkpoints; the open step is not saved (it restarts)."""
        return {
            "cumulative_s": self.cumulative_s,
            "cumulative_flops": self.cumulative_flops,
            "cumulative_tokens": dict(self.cumulative_tokens),
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cumulative_s = float(state["cumulative_s"])
        self.cumulative_flops = float(state["cumulative_flops"])
        self.cumulative_tokens = {k: int(state["cumulative_tokens"].get(k, 0)) for k in TOKEN_KINDS}
        self.steps = int(state["steps"])
        self._reset_step()


def calibrate_decode(model, tokenizer, problems, group_size: int, context: int = 0) -> dict[str, float]:
    """Seconds of one prefill and of one decode step for len(problems) x group_size rows,
    measured on this machine now: short greedy decodes (1 and 9 tokens, EOS ignored so that
    every row runs every step, the faster of two each, after a warm-up), through the engine
    the rollout will use. With mathrl.engine.decoder and `context` > 0 also `attn_s_per_col`:
    the seconds a decode step spends per row on each cached column (all layers), timed on a
    `context`-column cache, since attention, not the matmuls, dominates long GSM8K decodes.
    The caller's RNG stream is not touched."""
    from mathrl.engine.decoder import decoder_for, generate_rows
    from mathrl.models import compute_precision
    from mathrl.rollout import decode, encode_prompts, left_pad

    ids, mask = left_pad(encode_prompts(tokenizer, problems), tokenizer.pad_token_id)
    which = torch.arange(len(problems)).repeat_interleave(group_size)  # (n,) groups contiguous
    ids, mask = ids[which], mask[which]  # (n, P)
    device = next(model.parameters()).device
    engine = decoder_for(model)  # built (weights cast and packed) before the clock starts
    def seconds(tokens: int) -> float:
        start = time.perf_counter()
        if engine is not None:
            generate_rows(engine, ids, mask, which, tokens, [], tokenizer.pad_token_id, greedy=True)
        else:
            with compute_precision(model):
                decode(model, ids.to(device), mask.to(device), tokens, [], tokenizer.pad_token_id, greedy=True)
        return time.perf_counter() - start

    seconds(2)  # warm-up: the first calls of each shape pay for kernel selection
    times = [min(seconds(tokens) for _ in range(2)) for tokens in (1, 9)]
    step = max(times[1] - times[0], 1e-3 * times[0]) / 8
    cal = {"rows": ids.shape[0], "prefill_s": times[0], "step_s": step, "tok_per_s": ids.shape[0] / step}
    if engine is not None and context > ids.shape[1]:
        cal["attn_s_per_col"] = _attention_seconds_per_column(engine, ids.shape[0], ids.shape[1], context)
    return cal


@torch.no_grad()
def calibrate_passes(model, tokenizer, problems, group_size: int, rows: int, completion_tokens: int) -> float:
    """Seconds per row of a log-prob pass (no grad), measured now on one chunk of `rows` rows
    with `completion_tokens` completion tokens each, grouped by prompt as the trainer's chunks
    (a group shares its prompt's pass): the faster of two, after a warm-up."""
    from mathrl.logprobs import forward_completion
    from mathrl.rollout import encode_prompts, left_pad

    prompts, mask = left_pad(encode_prompts(tokenizer, problems), tokenizer.pad_token_id)
    which = torch.arange(rows) // group_size % prompts.shape[0]  # (rows,) groups contiguous
    filler = prompts[which, -1:].expand(-1, completion_tokens)  # (rows, T) any tokens do
    ids = torch.cat([prompts[which], filler], 1).to(next(model.parameters()).device)  # (rows, P + T)
    full = torch.cat([mask[which], torch.ones_like(filler)], 1).to(ids.device)  # (rows, P + T)

    def seconds() -> float:
        start = time.perf_counter()
        forward_completion(model, ids, full, prompts.shape[1])
        return time.perf_counter() - start

    seconds()
    return min(seconds() for _ in range(2)) / rows


def _attention_seconds_per_column(engine, rows: int, short: int, long: int) -> float:
    """(t(long) - t(short)) / (rows * (long - short)) for one decode step's attention over every
    layer on random tensors, the slope of the attention cost in cached columns per row."""
    def seconds(columns: int) -> float:
        gen = torch.Generator().manual_seed(0)
        kv = torch.randn(rows, engine.kv_heads, columns, engine.head_dim, generator=gen).to(engine.compute)
        q = torch.randn(rows, engine.heads, 1, engine.head_dim, generator=gen).to(engine.compute)
        bias = torch.zeros(rows, columns)
        engine._attention(q, kv, kv, bias, columns - 1)  # warm-up
        start = time.perf_counter()
        for _ in range(3):
            engine._attention(q, kv, kv, bias, columns - 1)
        return (time.perf_counter() - start) / 3 * len(engine.layers)

    return max(seconds(long) - seconds(short), 0.0) / (rows * (long - short))


def estimate_costs(cal: dict[str, float], max_new_tokens: int, passes: float, eval_rows: int,
                   eval_chunk: int) -> dict[str, float]:
    """Upper bounds in seconds, every completion at `max_new_tokens`: the rollout (decode
    steps at the calibrated rate), the log-prob passes (`passes` forward-equivalents over the
    rollout's rows: reference 1, old policy 1, update 3 per epoch, at the calibrated
    `pass_s_per_row`) and an eval of `eval_rows` rows decoded `eval_chunk` rows at a time.
    Decode steps grow with the columns each row attends to (`attn_s_per_col`, when calibrated)."""
    rows, T = cal["rows"], max_new_tokens
    growth = cal.get("attn_s_per_col", 0.0) * T * (T - 1) / 2  # per row: step t attends to t more columns
    rollout = cal["prefill_s"] + T * cal["step_s"] + rows * growth
    update = passes * cal["pass_s_per_row"] * rows
    chunks = -(-eval_rows // eval_chunk) if eval_rows else 0
    per_chunk = (cal["prefill_s"] * eval_chunk / rows + T * cal["step_s"] * max(eval_chunk / rows, 1.0)
                 + eval_chunk * growth)
    return {"rollout_s": rollout, "update_s": update, "step_s": rollout + update, "eval_s": chunks * per_chunk}
