"""SmolLM2-135M-Instruct's frontier on Countdown: is it a usable RL task for that model?

Evaluates the model on the first --limit held-out problems of each task (greedy, and --n
samples at T = 1: pass@1, pass@n), as `mathrl eval` does, then grades every completion again
through the task's hook to count why answers fail (the hook's reasons: unparsable, numbers not
used once, wrong value, ...), and how many answers reach the target while breaking the rules.

    OMP_NUM_THREADS=1 python benchmarks/countdown_frontier.py          # ~6-7 minutes per task, 1 thread
    python benchmarks/countdown_frontier.py --reasons-only             # re-tally committed samples

Writes results/countdown/smollm2-135m-<task>.json (+ .samples.jsonl) and reasons.json.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from fractions import Fraction
from pathlib import Path

OUT = Path("results/countdown")


def evaluate(task: str, limit: int, n: int) -> None:
    import mathrl
    from mathrl.engine.host import reuse_freed_memory

    reuse_freed_memory()
    summary, rows = mathrl.evaluate("smollm2-135m", task, limit=limit, n=n, k_values=(1, n), progress=True)
    path = OUT / f"smollm2-135m-{task}.json"
    path.write_text(json.dumps(summary, indent=2))
    with open(path.with_suffix(".samples.jsonl"), "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def reasons(task_name: str) -> dict:
    """Every completion (greedy and sampled) graded again: counts of the hook's reasons."""
    from mathrl.tasks import get_task
    from mathrl.verify.expression import ExpressionError, parse_expression

    task = get_task(task_name)
    problems = {p.id: p for p in task.load("test", seed=None)}
    rows = [json.loads(line) for line in open(OUT / f"smollm2-135m-{task_name}.samples.jsonl")]
    out = {}
    for kind in ("greedy", "sampled"):
        texts = [(r["completion"], problems[r["id"]]) for r in rows] if kind == "greedy" else \
            [(c, problems[r["id"]]) for r in rows for c in r["samples"]]
        grades = task.grade_batch([t for t, _ in texts], [p for _, p in texts])
        counts = Counter(g.reason.split(":")[0] for g in grades)
        on_target = 0  # the value is the target, but the numbers are not the given ones once each
        for g, (_, p) in zip(grades, texts):
            if g.reason == "numbers_not_used_once":
                try:
                    on_target += parse_expression(g.extracted).value() == Fraction(p.meta["target"])
                except ExpressionError:
                    pass
        out[kind] = {"completions": len(grades), "correct": sum(g.correct for g in grades),
                     "reasons": dict(counts.most_common()), "target_reached_breaking_rules": on_target}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="countdown-easy,countdown", help="comma-separated task names")
    ap.add_argument("--limit", type=int, default=40, help="held-out problems (the first N of test)")
    ap.add_argument("--n", type=int, default=8, help="samples per problem at T = 1")
    ap.add_argument("--reasons-only", action="store_true", help="only re-tally the committed samples")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    tasks = [t for t in args.tasks.split(",") if t]
    if not args.reasons_only:
        for task in tasks:
            evaluate(task, args.limit, args.n)
    record = {task: reasons(task) for task in tasks}
    (OUT / "reasons.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
