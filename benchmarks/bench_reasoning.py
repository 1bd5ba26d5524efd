"""Does GRPO improve reasoning, not just the answer format? (issue: reasoning, "done when").

GRPO trains SmolLM2-135M-Instruct on a frontier task: `arithmetic-add2` (2-digit a + b with a
one-shot prompt, graded by the last number written, so the answer format cannot earn reward).
On it the untrained model's pass@1 is far below its pass@k: it can add, but seldom does on the
first try. One ordinary run directory per seed; each evaluates the same held-out problems at
the start, the middle and the end: greedy accuracy, and n samples at T = 1 (pass@1 from n,
pass@k and maj@k up to k = n), every number graded strictly (the task's grade, the reward's)
and leniently (the task's `lenient_extractor`).

The gain is measured per problem and paired (the same problems before and after): the
summary gives per seed the lenient pass@1 at start and end, and over seeds the mean gain with
a 95% Student-t interval (n = number of seeds), plus a paired bootstrap over problems x seeds.

    python benchmarks/bench_reasoning.py --seeds 0 --output DIR          # one seed
    python benchmarks/bench_reasoning.py                                 # the committed result

Writes DIR/runs/seed-N/ (run directories: config.json, metrics.jsonl, eval/*.json,
samples/eval-*.jsonl; checkpoints are removed, final/ is kept for benchmarks/bench_passk.py),
DIR/summary.json and DIR/reasoning.png. A finished seed is reused, so a second call only
re-reads and re-renders. Not a test: minutes per seed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="arithmetic-add2")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated; one run each")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--prompts", type=int, default=8, help="prompts per step")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--kl-coef", type=float, default=0.04)
    ap.add_argument("--dynamic-sampling", action="store_true", help="DAPO: refill zero-variance groups")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    # 50 problems x 16 samples cost ~5 min an eval on one core; 100 would push a seed past 30 min
    ap.add_argument("--eval-limit", type=int, default=50, help="held-out problems, the same at every eval")
    ap.add_argument("--eval-samples", type=int, default=16, help="samples per problem at T = 1 (pass@1 from n)")
    ap.add_argument("--evals", type=int, default=3, help="evaluations: start, (middle,) end")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other config key")
    ap.add_argument("--output", type=Path, default=Path("results/reasoning"))
    args = ap.parse_args()

    runs = [run_seed(args, int(seed)) for seed in args.seeds.split(",")]
    summary = summarize(args, runs)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(runs, args.output / "reasoning.png", args.task)
    print_table(summary)
    print(f"wrote {args.output / 'summary.json'} and {args.output / 'reasoning.png'}")


def overrides_for(args, seed: int, run_dir: Path) -> dict:
    every = max(1, args.steps // max(1, args.evals - 1))
    values = {"model": args.model, "task": args.task, "max_steps": args.steps, "seed": seed,
              "prompts_per_step": args.prompts, "group_size": args.group_size, "lr": args.lr,
              "kl_coef": args.kl_coef, "dynamic_sampling": args.dynamic_sampling,
              "max_new_tokens": args.max_new_tokens, "eval_every": every if args.evals > 2 else 0,
              "eval_limit": args.eval_limit, "eval_samples": args.eval_samples,
              # KL drift at eval would run policy and reference over every eval sample (minutes);
              # the training KL (kl/mean, k3 on the step's samples) is logged at every step instead
              "eval_kl": False,
              "samples_every": 5, "threads": args.threads, "output": str(run_dir)}
    for item in args.set:
        key, _, value = item.partition("=")
        values[key] = value
    return values


def run_seed(args, seed: int) -> dict:
    """Train one seed (unless it finished before) and read back its evaluations."""
    from mathrl.config import build_config
    from mathrl.train import train

    run_dir = args.output / "runs" / f"seed-{seed}"
    wall_file = run_dir / "bench_wall.json"
    if not wall_file.is_file():  # not finished: (re)start from scratch
        shutil.rmtree(run_dir, ignore_errors=True)
        start = time.time()  # process wall: model load, every eval and the final one included
        train(build_config("grpo", None, overrides_for(args, seed, run_dir)), progress=True)
        wall_file.write_text(json.dumps({"wall_s": time.time() - start}))
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # resume state: GBs, not a result
    return read_run(run_dir, seed, json.loads(wall_file.read_text())["wall_s"])


def read_run(run_dir: Path, seed: int, wall_s: float) -> dict:
    """Every eval of one run: its summary numbers and, per problem, the lenient/strict c of n."""
    from mathrl.results import RunDir

    evals = []
    # step-000000, step-000010, ..., final (the last one, after the last training step)
    for path in sorted((run_dir / "eval").glob("*.json"), key=lambda p: (p.stem == "final", p.stem)):
        summary = json.loads(path.read_text())
        rows = RunDir(run_dir).read_samples(f"eval-{path.stem}")
        sampled = [a for r in rows for a in r["samples_extracted_lenient"]]
        # the eval's no_answer_frac counts greedy answers only; this counts every sampled completion
        summary["no_answer_sampled"] = {"count": sum(a is None for a in sampled), "of": len(sampled)}
        summary["per_problem"] = {r["id"]: {"c_lenient": sum(r["samples_correct_lenient"]),
                                            "c": sum(r["samples_correct"]), "n": len(r["samples_correct"]),
                                            "greedy_lenient": r["correct_lenient"]} for r in rows}
        evals.append(summary)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    train_rows = [r for r in rows if "reward/mean" in r]
    return {"seed": seed, "wall_s": wall_s, "evals": evals,
            "reward_curve": [{"step": r["step"], "reward": r["reward/mean"], "kl": r.get("kl/mean"),
                              "zero_std_frac": r.get("adv/zero_std_frac")} for r in train_rows]}


KEYS = ("accuracy", "accuracy_lenient", "pass@1", "pass@1_lenient")


def summarize(args, runs: list[dict]) -> dict:
    import numpy as np

    from mathrl.stats import METHOD, seeds_problems_interval, t_interval

    per_seed, paired = [], []  # paired: per seed, (after - before) of each problem
    for r in runs:
        start, end = r["evals"][0], r["evals"][-1]
        row = {"seed": r["seed"], "wall_min": r["wall_s"] / 60, "steps": [e["step"] for e in r["evals"]]}
        for key in (*KEYS, *sorted(k for k in end if k.startswith(("pass@", "maj@")))):
            row[key] = [e.get(key) for e in r["evals"]]
        row["kl_k3_end"] = (end.get("kl_drift") or {}).get("k3_token")
        row["no_answer_sampled"] = [e["no_answer_sampled"] for e in r["evals"]]
        row["gain_pass@1_lenient"] = end["pass@1_lenient"] - start["pass@1_lenient"]
        per_seed.append(row)
        ids = sorted(end["per_problem"])  # the same problems at both evaluations: paired
        paired.append([end["per_problem"][i]["c_lenient"] / end["per_problem"][i]["n"]
                       - start["per_problem"][i]["c_lenient"] / start["per_problem"][i]["n"] for i in ids])
    gains = [s["gain_pass@1_lenient"] for s in per_seed]
    over_seeds = t_interval(gains)
    crossed = seeds_problems_interval(np.array(paired))
    return {"command": "python benchmarks/bench_reasoning.py " + " ".join(
                [f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "set"]
                + [f"--set {kv}" for kv in args.set]),
            "task": args.task, "model": args.model, "per_seed": per_seed,
            "gain_pass@1_lenient": {"mean": over_seeds.mean,
                                    "ci95_seeds": [over_seeds.lo, over_seeds.hi] if len(gains) > 1 else None,
                                    "ci95_seeds_x_problems": [crossed.lo, crossed.hi], "method": METHOD,
                                    "per_seed": gains},
            "wall_min_mean": statistics.mean(s["wall_min"] for s in per_seed)}


def print_table(summary: dict) -> None:
    print(f"{'seed':>4} | {'greedy (lenient)':>18} | {'pass@1 lenient':>16} | {'pass@1 strict':>15} | wall")
    for s in summary["per_seed"]:
        fmt = lambda xs: " -> ".join(f"{x:.2f}" for x in (xs[0], xs[-1]))  # noqa: E731
        print(f"{s['seed']:>4} | {fmt(s['accuracy_lenient']):>18} | {fmt(s['pass@1_lenient']):>16} | "
              f"{fmt(s['pass@1']):>15} | {s['wall_min']:.1f} min")
    g = summary["gain_pass@1_lenient"]
    ci = g["ci95_seeds"]
    print(f"gain in lenient pass@1: {g['mean']:+.3f}" + (f", 95% CI over seeds [{ci[0]:+.3f}, "
                                                         f"{ci[1]:+.3f}]" if ci else "")
          + ", over seeds and problems (stats.seeds_problems_interval) [{:+.3f}, "
            "{:+.3f}]".format(*g["ci95_seeds_x_problems"]))


def plot(runs: list[dict], path: Path, task: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for i, r in enumerate(runs):
        steps, color = [e["step"] for e in r["evals"]], f"C{i}"
        left.plot(steps, [100 * e["pass@1_lenient"] for e in r["evals"]], "o-", color=color,
                  label=f"seed {r['seed']}: pass@1 (lenient)")
        k = max(int(key.split("@")[1].split("_")[0]) for key in r["evals"][-1] if key.startswith("pass@"))
        left.plot(steps, [100 * e[f"pass@{k}_lenient"] for e in r["evals"]], "^:", color=color, alpha=0.6,
                  label=f"seed {r['seed']}: pass@{k} (lenient)")
        curve = r["reward_curve"]
        right.plot([c["step"] for c in curve], [c["reward"] for c in curve], color=color, lw=1.5,
                   label=f"seed {r['seed']}")
    left.set(xlabel="training step", ylabel="held-out, % of problems", ylim=(-2, 102),
             title=f"GRPO, SmolLM2-135M-Instruct, {task}")
    right.set(xlabel="training step", ylabel="mean reward of the step's samples", ylim=(-0.02, 1.02),
              title="training reward")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0)) if len(runs) > 3 else left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
