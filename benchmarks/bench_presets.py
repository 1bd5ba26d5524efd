"""What does each algorithm preset cost per step on this machine? (issue: the algorithm zoo)

Runs every preset for a few steps with identical rollout settings and reports the median
step time, its split by phase, and the FLOPs per step from the run's own accounting
(mathrl/compute.py). The first step of each run is dropped (warm-up). Writes
results/presets/cost.json and cost.md.

    python benchmarks/bench_presets.py --model smollm2-135m --steps 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

PHASES = ("rollout", "reward", "reference", "old_logprobs", "update")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="arithmetic")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--output", type=Path, default=Path("results/presets"))
    args = ap.parse_args()

    from mathrl.presets import PRESETS
    from mathrl.results import RunDir
    from mathrl.config import build_config
    from mathrl.train import train

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for algo in PRESETS:
            overrides = {"model": args.model, "task": args.task, "max_steps": args.steps, "eval_limit": 0,
                         "prompts_per_step": args.prompts, "group_size": args.samples,
                         "max_new_tokens": args.new_tokens, "save_final": False, "samples_every": 0,
                         "eval_kl": False, "output": str(Path(tmp) / algo)}
            if algo == "sft":  # SFT has no groups: the same number of sequences per step
                overrides.update(prompts_per_step=args.prompts * args.samples, group_size=1)
            train(build_config(algo, None, overrides), progress=False)
            steps = [m for m in RunDir(Path(tmp) / algo).read_metrics() if "time/step_s" in m][1:]
            row = {"algo": algo, "step_s": statistics.median(m["time/step_s"] for m in steps),
                   "flops_per_step": statistics.median(m["flops/step"] for m in steps),
                   "tokens_trained": statistics.median(m["tokens/trained"] for m in steps)}
            row.update({f"{p}_s": statistics.median(m.get(f"time/{p}_s", 0.0) for m in steps) for p in PHASES})
            rows.append(row)
            print(f"{algo:>13}: {row['step_s']:.2f} s/step, {row['flops_per_step']:.3g} FLOPs/step")
    args.output.mkdir(parents=True, exist_ok=True)
    setup = {k: v for k, v in vars(args).items() if k != "output"}
    (args.output / "cost.json").write_text(json.dumps({"setup": setup, "presets": rows}, indent=2))
    header = "| preset | s/step | " + " | ".join(f"{p} s" for p in PHASES) + " | GFLOPs/step | tokens trained |"
    lines = [f"Setup: {setup} (medians over steps 2..{args.steps}; CPU, 2 cores)", "", header,
             "|" + "---|" * (len(PHASES) + 4)]
    for r in rows:
        lines.append(f"| {r['algo']} | {r['step_s']:.2f} | " + " | ".join(f"{r[p + '_s']:.2f}" for p in PHASES)
                     + f" | {r['flops_per_step'] / 1e9:.1f} | {r['tokens_trained']:.0f} |")
    (args.output / "cost.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
