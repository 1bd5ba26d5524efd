"""What a run will cost, said before it starts: the thread count, a measured estimate of a
step and of an eval, the allocator's settings."""

from __future__ import annotations

import os
import sys
import time

from mathrl.compute import calibrate_decode, estimate_costs
from mathrl.distributed import is_sharded
from mathrl.models import AUTOCAST_ATTR
from mathrl.rollout import encode_prompts


def busy_cores(seconds: float = 0.25) -> float:
    """How many cores other processes keep busy right now: the machine's CPU time over a short
    window (/proc/stat) minus this process's own; the 1-minute load average where /proc/stat is
    missing. Not the load average alone: it lags, and a benchmark that ended a minute earlier
    still counted as a whole busy core, which made a quiet machine look contended."""
    def sample() -> tuple[int, int, float]:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        return sum(ticks) - ticks[3] - ticks[4], sum(ticks), time.process_time()  # busy, all, own CPU s

    try:
        busy0, all0, own0 = sample()
        time.sleep(seconds)
        busy1, all1, own1 = sample()
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0]
    cores = os.cpu_count() or 1
    return max((busy1 - busy0) / max(all1 - all0, 1) * cores - (own1 - own0) / seconds, 0.0)


def choose_threads(requested: int = 0) -> tuple[int, str]:
    """torch's intra-op threads and why: `requested` if set; else all of this process's share
    of the cores on a quiet machine, one when other jobs keep the cores busy (results/bench:
    two threads on a busy 2-core machine made a step 8x slower, one descheduled thread
    stalling the other at every barrier; on a quiet one 1.4-1.7x faster than one)."""
    if requested:
        return requested, f"threads={requested} was set"
    cores = os.cpu_count() or 1
    share = max(cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)  # torchrun / accelerate
    if share == 1:
        return 1, f"{cores} cores per process"
    busy = busy_cores()
    if busy >= 0.5:
        return 1, f"other processes keep {busy:.1f} of {cores} cores busy: contended, one thread per process"
    return share, f"other processes keep {busy:.1f} of {cores} cores busy: quiet"


# What one completion token of a log-prob pass (and its backward) keeps in memory, estimated:
# its float32 logits over the vocabulary and about this many float32 activations per layer and
# hidden unit. A chunk of rows is sized to hold MICRO_BATCH_BYTES of them, and is never smaller
# than MIN_MICRO_BATCH rows, the fixed size SmolLM2 was measured with (results/bench).
ACTIVATIONS_PER_LAYER_UNIT = 32
MICRO_BATCH_BYTES = 256 * 2 ** 20
MIN_MICRO_BATCH = 8


def choose_micro_batch(requested: int, model_config, max_new_tokens: int, group_size: int) -> int:
    """Rows per forward/backward chunk: `requested` if set; else as many rows as fit the
    memory estimate above, in whole groups (a group split over two chunks runs its prompt twice).
    A 0.1M-parameter model then runs the whole batch in one chunk, where 16 chunks of 8 rows
    spent most of its step in per-chunk overhead (results/bench/speed6.md)."""
    if requested:
        return requested
    per_token = 4 * (model_config.vocab_size
                     + ACTIVATIONS_PER_LAYER_UNIT * model_config.num_hidden_layers * model_config.hidden_size)
    rows = max(MIN_MICRO_BATCH, MICRO_BATCH_BYTES // (per_token * max(max_new_tokens, 1)))
    if rows >= group_size > 1:
        rows -= rows % group_size
    return rows


def reuse_freed_memory() -> bool:
    """Make glibc's malloc serve every allocation from its heap and keep what is freed there
    (no mmap, no trim), for this process. By default it maps each block above 32 MiB afresh and
    unmaps it when freed, so every large tensor of a step (SmolLM2's 113 MB embedding gradient,
    its 50 MB float32 logits) page-faults all its pages in again, zero-filled by the kernel:
    the bench's update spent ~0.3 s zero-filling embedding gradients alone, and with freed
    memory reused it ran 10% faster, with 1.8 M fewer page faults per process
    (results/bench/speed3.md). The cost: memory freed after the peak is not handed back to the
    system while the process runs.
    MATHRL_SYSTEM_MALLOC=1 keeps the defaults; other C libraries are left alone. Returns whether
    the setting took."""
    if sys.platform != "linux" or os.environ.get("MATHRL_SYSTEM_MALLOC"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl names its libc otherwise)
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's malloc.h
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))


EVAL_HINT_S = 60  # an eval estimated above this gets a hint with the eval_limit that fits it


def announce_costs(state) -> None:
    """Print, before anything long starts, what a step and an eval will cost on this machine
    (every completion at the limit, from a few measured decode steps: on GSM8K the eval came
    out 8% above its estimate, the rollout 10% below) and the dtype the matmuls run in."""
    cfg, recipe = state.cfg, state.recipe
    # FSDP: every forward all-gathers weight shards, so a calibration on rank 0 alone would hang
    if not state.accelerator.is_main_process or cfg.rollout != "hf" or is_sharded(state.accelerator):
        return
    policy = state.policy_for_generation()
    prompts = state.train_problems[:state.prompts_per_rank]
    prompt_tokens = sum(map(len, encode_prompts(state.tokenizer, prompts))) / max(len(prompts), 1)
    cal = calibrate_decode(policy, state.tokenizer, prompts, cfg.group_size,
                           context=int(prompt_tokens) + state.max_new_tokens)
    passes = recipe.passes.forward_equivalents
    eval_rows = len(state.eval_problems) * (1 + cfg.eval_samples)
    est = estimate_costs(cal, state.n_params, state.max_new_tokens, prompt_tokens, passes, eval_rows,
                         min(64, eval_rows or 1))  # evaluate() decodes 64 rows at a time
    precision = getattr(policy, AUTOCAST_ATTR, None)
    print(f"mathrl: estimate on this machine (every completion at the {state.max_new_tokens}-token limit; decode "
          f"measured at {cal['tok_per_s']:.0f} tok/s over {cal['rows']} rows, "
          f"{'bf16 autocast' if precision is not None else next(state.model.parameters()).dtype}): "
          f"step ~{est['step_s']:.0f} s (rollout {est['rollout_s']:.0f} s, log-prob passes {est['update_s']:.0f} s); "
          f"eval ~{est['eval_s']:.0f} s ({eval_rows} rows) at step 0 and every {cfg.eval_every or '-'} steps",
          file=sys.stderr)
    fits = int(len(state.eval_problems) * EVAL_HINT_S / est["eval_s"]) if est["eval_s"] > EVAL_HINT_S else 0
    if fits >= 8:  # sized by the measured rate; a hint, not a silent cut: the eval set must not depend on the machine
        print(f"mathrl: an eval of {len(state.eval_problems)} problems may take minutes here; --set eval_limit={fits} "
              f"fits about {EVAL_HINT_S} s, --set eval_every=0 evaluates only at the start and the end", file=sys.stderr)
