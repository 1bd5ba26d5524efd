"""The matmuls of one decode step, with weights streamed from memory or resident in cache.

    python benchmarks/bench_decode_gemm.py                 # 1, 16 and 64 rows, 1 thread
    python benchmarks/bench_decode_gemm.py --rows 16 --repeats 9

Issue 14 asks for a rollout within 2x of its executed-FLOP roofline. A decode step of the
bench (16 rows) is mostly its 121 matmuls (per layer: q/k/v, output, gate/up, down; then the
LM head), run on mathrl.engine.decoder's snapshot of SmolLM2-135M (bf16, pre-packed for oneDNN). This
times those matmuls alone, two ways, alternating in one process:
  * streamed: every layer its own weights, as in the model (270 MB of bf16 per step, read from
    DRAM: far more than the caches hold);
  * resident: every layer runs layer 0's weights (7 MB, held in L3), the LM head is left out;
and prints them against this machine's limits, measured in the same run: the bf16 matmul
peak (compute floor = FLOPs / peak) and the read bandwidth of one thread (memory floor =
weight bytes / bandwidth). A kernel that overlapped its weight reads with its arithmetic
would take max(compute, memory); one that does not takes about their sum.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
from bench_packing import lengths_arg  # comma-separated positive integers, a clear error otherwise

from mathrl.bench import matmul_peak
from mathrl.engine.host import reuse_freed_memory
from mathrl.engine.decoder import Decoder
from mathrl.models import load_model


def read_bandwidth(mib: int = 512, repeats: int = 5) -> float:
    """Bytes/s of one thread summing a float32 buffer far larger than the caches (best repeat)."""
    buf = torch.ones(mib * 2 ** 20 // 4)
    buf.sum()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        buf.sum()
        best = max(best, buf.numel() * 4 / (time.perf_counter() - start))
    return best


def step_matmuls(decoder: Decoder, rows: int, resident: bool) -> tuple[Callable[[], None], float, float]:
    """A decode step's matmuls as a function, with its FLOPs and weight bytes."""
    layers = [decoder.layers[0]] * len(decoder.layers) if resident else decoder.layers
    hidden = torch.randn(rows, decoder.embed.shape[1], dtype=decoder.compute)  # (rows, H)
    attn = torch.randn(rows, decoder.heads * decoder.head_dim, dtype=decoder.compute)
    inner = torch.randn(rows, layers[0].down.shape[1], dtype=decoder.compute)  # (rows, I); packed keeps (out, in)

    def run() -> None:
        for layer in layers:
            decoder._linear(hidden, layer.qkv, layer.qkv_bias)
            decoder._linear(attn, layer.out, layer.out_bias)
            decoder._linear(hidden, layer.gate_up, layer.gate_up_bias)
            decoder._linear(inner, layer.down, layer.down_bias)
        if not resident:
            decoder._linear(hidden, decoder.lm_head, decoder.lm_head_bias)

    per_layer = sum(t.numel() for t in (layers[0].qkv, layers[0].out, layers[0].gate_up, layers[0].down))
    params = per_layer * len(layers) + (0 if resident else decoder.lm_head.numel())
    return run, 2.0 * rows * params, float(params * hidden.element_size())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=lengths_arg, default="1,16,64",
                   help="comma-separated row counts (16: the bench's 2 prompts x 8 samples)")
    p.add_argument("--repeats", type=int, default=7, help="timed steps per side and row count")
    a = p.parse_args()
    torch.set_num_threads(1)
    reuse_freed_memory()  # as `mathrl run` does
    model, _ = load_model("smollm2-135m", seed=0, dtype="bfloat16")
    decoder = Decoder(model)
    peak = matmul_peak(dtype=decoder.compute)["wall"]
    bandwidth = read_bandwidth()
    print(f"bf16 matmul peak {peak / 1e9:.0f} GFLOP/s, read bandwidth {bandwidth / 1e9:.1f} GB/s "
          f"(1 thread); weights pre-packed for oneDNN: {decoder.packed}")
    for rows in a.rows:
        sides = {resident: step_matmuls(decoder, rows, resident) for resident in (False, True)}
        times: dict[bool, list[float]] = {False: [], True: []}
        for i in range(a.repeats + 1):
            for resident in ((False, True) if i % 2 == 0 else (True, False)):
                start = time.perf_counter()
                sides[resident][0]()
                if i:  # the first round warms oneDNN's kernels
                    times[resident].append(time.perf_counter() - start)
        for resident, (_, flops, nbytes) in sides.items():
            t = statistics.median(times[resident])
            compute, memory = flops / peak, nbytes / bandwidth
            name = "resident (layer 0 x 30, no LM head)" if resident else "streamed (the model)"
            print(f"{rows:>3} rows, {name}: {t * 1e3:.1f} ms = {flops / t / 1e9:.0f} GFLOP/s "
                  f"({flops / t / peak:.0%} of peak), {nbytes / t / 1e9:.1f} GB/s of weights; "
                  f"compute floor {compute * 1e3:.1f} ms, memory floor {memory * 1e3:.1f} ms: "
                  f"{t / compute:.2f}x compute, {t / max(compute, memory):.2f}x max, "
                  f"{t / (compute + memory):.2f}x sum", flush=True)


if __name__ == "__main__":
    main()
