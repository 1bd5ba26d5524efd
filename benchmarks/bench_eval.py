"""Greedy-eval throughput: generated tokens per second of `mathrl.evaluate.evaluate`, for one or
more mathrl checkouts measured in the same run (issue 14: "GSM8K greedy eval tokens per second
is >= 3x today's, on the same problems and limit").

Each checkout runs in its own process (PYTHONPATH=<checkout>, so two versions of mathrl can be
compared without installing either), rounds alternate the order, and every process evaluates
the same problems (`task.load("test", limit=N, seed=0)`) greedily at the same token limit on
SmolLM2-135M at 1 torch thread. Reported per checkout: generated tokens (sum of completion
lengths, EOS included), wall and process CPU seconds of the evaluate() call (model loading
excluded), tokens per second on both clocks, accuracy and the truncated fraction, and the ratio
of each checkout's tokens per CPU second to the first one's. CPU seconds are the robust clock
on a shared machine; wall seconds are the user's clock on a quiet one.

    git worktree add --detach /tmp/mathrl-before e41275c        # the code before issue 14
    python benchmarks/bench_eval.py --checkout /tmp/mathrl-before:float32 --checkout . \\
        --data ../shared/data/gsm8k --output results/bench/eval_speed.json

A checkout is PATH or PATH:DTYPE; without DTYPE it loads the model with `--dtype` (default
auto: bf16 mixed precision on a CPU with bf16 units; e41275c predates `auto`, its default was
float32).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time, torch
from mathrl.evaluate import evaluate
from mathrl.models import load_model
from mathrl.tasks import get_task
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
model, tok = load_model(args["model"], dtype=args["dtype"])
task = get_task(args["task"], data_dir=args["data"])
problems = task.load("test", limit=args["problems"], seed=0)
wall, cpu = time.perf_counter(), time.process_time()
summary, _ = evaluate(model, tok, task, problems, args["limit"])
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
import mathrl
print("RESULT " + json.dumps({"tokens": summary["len_mean"] * summary["n"], "wall_s": wall, "cpu_s": cpu,
      "accuracy": summary["accuracy"], "truncated_frac": summary["truncated_frac"], "mathrl": mathrl.__file__}))
"""


def split_checkout(spec: str) -> tuple[Path, str]:
    """PATH or PATH:DTYPE (e.g. before:float32 for a checkout that predates dtype=auto)."""
    path, _, dtype = spec.partition(":")
    return Path(path), dtype


def run_child(spec: str, settings: dict) -> dict:
    checkout, dtype = split_checkout(spec)
    settings = {**settings, "dtype": dtype or settings["dtype"]}
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve()), "OMP_NUM_THREADS": str(settings["threads"])}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(settings)], env=env, capture_output=True,
                          text=True, cwd=checkout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"bench_eval: {checkout} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkout", action="append", help="a mathrl checkout, PATH or PATH:DTYPE (repeat; default: this "
                                                        "one)")
    ap.add_argument("--task", default="gsm8k")
    ap.add_argument("--data", default="../shared/data/gsm8k", help="local data directory of the task")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--problems", type=int, default=16)
    ap.add_argument("--limit", type=int, default=256, help="max new tokens per completion")
    ap.add_argument("--rounds", type=int, default=2, help="each round runs every checkout once, order rotated")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="auto", help="load_model dtype for checkouts without :DTYPE")
    ap.add_argument("--output", type=Path)
    args = ap.parse_args()
    checkouts = args.checkout or [str(Path(__file__).resolve().parents[1])]
    settings = {"task": args.task, "data": str(Path(args.data).resolve()), "model": args.model,
                "problems": args.problems, "limit": args.limit, "threads": args.threads, "dtype": args.dtype}
    runs: dict[str, list[dict]] = {c: [] for c in checkouts}
    for r in range(args.rounds):
        order = checkouts[r % len(checkouts):] + checkouts[:r % len(checkouts)]
        for checkout in order:
            result = run_child(checkout, settings)
            runs[checkout].append(result)
            print(f"round {r + 1} {checkout}: {result['tokens']:.0f} tokens, {result['cpu_s']:.1f} CPU s, "
                  f"{result['wall_s']:.1f} wall s", flush=True)
    summary = {}
    for name, results in runs.items():
        summary[name] = {
            "tokens": statistics.median(x["tokens"] for x in results),
            "tok_per_cpu_s": statistics.median(x["tokens"] / x["cpu_s"] for x in results),
            "tok_per_wall_s": statistics.median(x["tokens"] / x["wall_s"] for x in results),
            "accuracy": results[0]["accuracy"], "truncated_frac": results[0]["truncated_frac"]}
    first = summary[checkouts[0]]
    print(f"{'checkout':<40}{'tokens':>8}{'tok/CPU s':>11}{'tok/wall s':>11}{'x first (CPU)':>14}"
          f"{'acc':>6}{'trunc':>7}")
    for name, s in summary.items():
        s["ratio_cpu"] = s["tok_per_cpu_s"] / first["tok_per_cpu_s"]
        s["ratio_wall"] = s["tok_per_wall_s"] / first["tok_per_wall_s"]
        print(f"{name[-40:]:<40}{s['tokens']:>8.0f}{s['tok_per_cpu_s']:>11.1f}{s['tok_per_wall_s']:>11.1f}"
              f"{s['ratio_cpu']:>14.2f}{s['accuracy']:>6.2f}{s['truncated_frac']:>7.2f}")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"settings": settings, "summary": summary, "runs": runs,
                                           "load_avg": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
