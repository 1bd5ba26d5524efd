"""The host process's settings for speed: torch's thread count, the log-prob passes' chunk size and
glibc's allocator."""

from __future__ import annotations

import os
import sys
import time


def busy_cores(seconds: float = 0.25) -> float:
    """How many cores other processes keep busy right now: the machine's CPU time over a short
    window (/proc/stat) minus this process's own. Not the load average, which lags by a minute
    (its fallback where /proc/stat is missing)."""
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
    of the cores on a quiet machine, one when other jobs keep the cores busy, where a
    descheduled thread stalls the others at every barrier (results/bench/README.md, Speed I)."""
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
    """Make glibc's malloc keep freed memory in its heap (no mmap, no trim), so that a step's
    large tensors are not page-faulted in, zero-filled, at every allocation
    (results/bench/speed3.md). The cost: memory freed after the peak stays with the process.
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
