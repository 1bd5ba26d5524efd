"""rliable against mathrl/stats.py on committed runs: what each interval resamples, how wide it is,
whether the probability of improvement agrees, and what each costs (results/stats/README.md).

rliable (Agarwal et al. 2021) scores a (runs, tasks) matrix per algorithm with a stratified
bootstrap that resamples runs within each task. Here the "tasks" are the evaluation problems, so
rliable resamples seeds per problem and never resamples problems; mathrl's interval resamples both.
rliable needs its own environment (it imports arch, which fails under pandas 3):

    python -m venv /tmp/rl && /tmp/rl/bin/pip install rliable "pandas<3" scipy
    PYTHONPATH=. /tmp/rl/bin/python benchmarks/bench_stats.py results/deepseekmath-unified-v3
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from rliable import library as rly
    from rliable import metrics as rlm

    from mathrl.claims import problem_scores
    from mathrl.stats import crossed_bootstrap, prob_improvement, seeds_problems_interval, t_interval

    root = Path(sys.argv[1])
    by_algo: dict[str, list[dict]] = {}
    for run in sorted((root / "runs").iterdir()):
        config = json.loads((run / "config.json").read_text())
        if run.name.startswith("init-"):
            continue
        by_algo.setdefault(config["algo"], []).append(problem_scores(str(run), "final"))
    ids = sorted(set.intersection(*(set(s) for runs in by_algo.values() for s in runs)))
    mats = {a: np.array([[s[i] for i in ids] for s in runs]) for a, runs in by_algo.items()}  # (seeds, problems)
    out = {"source": str(root), "problems": len(ids), "algorithms": {}, "probability_of_improvement": []}
    for algo, x in mats.items():
        t0 = time.perf_counter()
        _, rl_ci = rly.get_interval_estimates({algo: x}, lambda s: np.array([s.mean()]), reps=20_000)
        t_rl = time.perf_counter() - t0
        t0 = time.perf_counter()
        boot = crossed_bootstrap(x)
        t_ours = time.perf_counter() - t0
        quoted, seeds_only = seeds_problems_interval(x), t_interval(x.mean(axis=1))
        out["algorithms"][algo] = {
            "seeds": x.shape[0], "mean": float(x.mean()),
            "rliable_stratified_bootstrap": [float(rl_ci[algo][0][0]), float(rl_ci[algo][1][0])],
            "t_over_seeds": [seeds_only.lo, seeds_only.hi],
            "crossed_bootstrap": [boot.lo, boot.hi],
            "mathrl_quoted": [quoted.lo, quoted.hi],
            "seconds": {"rliable": t_rl, "crossed_bootstrap": t_ours},
        }
    algos = list(mats)
    for i, a in enumerate(algos):
        for b in algos[i + 1:]:
            ours = prob_improvement(mats[a].mean(axis=1), mats[b].mean(axis=1))
            theirs = float(rlm.probability_of_improvement(mats[a].mean(axis=1, keepdims=True),
                                                          mats[b].mean(axis=1, keepdims=True)))
            out["probability_of_improvement"].append({"a": a, "b": b, "mathrl": ours, "rliable": theirs})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
