"""What checkpoint hashes cost on a SmolLM2-135M-sized GRPO checkpoint (issue 26).

    python benchmarks/bench_checkpoint_hash.py --output results/reliability/hash_cost.json

The state is what checkpoint.checkpoint_state saves: the model's fp32 weights and AdamW's two
moment buffers after one step (random weights of SmolLM2-135M's shape, a config written here:
no download), about 1.6 GB. Alternating in one process, each repeat times:
  * checkpoint.save_checkpoint with hashes switched off (torch.save, marker, fsyncs: a
    checkpoint before issue 26), and as it is (hashing every file as well);
  * checkpoint.file_hash alone, and one plain SHA-256 stream over the same file (the reference
    the chunked, threaded hash list is measured against);
  * checkpoint.load_checkpoint (hash check + torch.load) against torch.load alone.
Medians are reported; the cost of hashes is the difference of the two saves, and of the loads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

import mathrl.checkpoint
from mathrl.checkpoint import file_hash, load_checkpoint, save_checkpoint

SMOLLM2_135M = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
                    max_position_embeddings=8192)


def state(layers: int) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{**SMOLLM2_135M, "num_hidden_layers": layers}))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    return {"step": 1, "model": model.state_dict(), "optimizer": opt.state_dict()}


def timed(fn, cpu: list[float] | None = None) -> float:
    """Wall seconds of fn(); its CPU seconds over all threads go to `cpu` (on a loaded machine
    the CPU time is the work itself, the wall time also the wait for a core)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    if cpu is not None:
        cpu.append(time.process_time() - start_cpu)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layers", type=int, default=30, help="Fewer layers than SmolLM2's 30 for a quick try.")
    parser.add_argument("--dir", type=Path, default=None, help="Where to write (default: a temporary folder).")
    parser.add_argument("--output", type=Path, default=None, help="Write the measurements as JSON here.")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(dir=args.dir))
    s = state(args.layers)
    times: dict[str, list[float]] = {k: [] for k in ("save_no_hash", "save_checkpoint", "file_hash", "sha256_stream",
                                                     "torch_load", "load_checkpoint")}
    cpu: dict[str, list[float]] = {"file_hash": [], "sha256_stream": []}
    no_hash = lambda path: "none"  # noqa: E731
    try:
        for r in range(args.repeats):
            plain = root / f"plain-{r}.pt"
            torch.save(s, plain)
            mathrl.checkpoint.file_hash = no_hash
            times["save_no_hash"].append(timed(lambda: save_checkpoint(root / "plain", r + 1, {**s, "step": r + 1},
                                                                       keep=1)))
            mathrl.checkpoint.file_hash = file_hash
            times["save_checkpoint"].append(timed(lambda: save_checkpoint(root / "ckpts", r + 1, {**s, "step": r + 1},
                                                                          keep=1)))
            ckpt = root / "ckpts" / f"step-{r + 1:07d}"
            times["file_hash"].append(timed(lambda: file_hash(ckpt / "state.pt"), cpu["file_hash"]))
            with open(plain, "rb") as f:
                times["sha256_stream"].append(timed(lambda: hashlib.file_digest(f, "sha256"), cpu["sha256_stream"]))
            times["torch_load"].append(timed(lambda: torch.load(plain, map_location="cpu", weights_only=False)))
            times["load_checkpoint"].append(timed(lambda: load_checkpoint(ckpt)))
            plain.unlink()
        size = (ckpt / "state.pt").stat().st_size
    finally:
        shutil.rmtree(root, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    result = {"bytes": size, "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "repeats": args.repeats,
              "median_s": med, "all_s": times, "median_cpu_s": med_cpu, "all_cpu_s": cpu,
              "hash_added_to_save_s": med["save_checkpoint"] - med["save_no_hash"],
              "hash_added_to_load_s": med["load_checkpoint"] - med["torch_load"],
              "torch": torch.__version__}
    print(f"checkpoint {size / 1e9:.2f} GB, {os.cpu_count()} CPUs, medians of {args.repeats}:")
    for k, v in med.items():
        print(f"  {k:16s} {v:6.3f} s" + (f"  ({med_cpu[k]:.3f} CPU s)" if k in med_cpu else ""))
    print(f"hashes add {result['hash_added_to_save_s']:.3f} s to a save, {result['hash_added_to_load_s']:.3f} s to a "
          "load")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
