"""`mathrl compare --jobs 1` against `--jobs 2` on one tiny grid, back to back, alternating
(results/bench/grid/). The grid: 4 GRPO runs of the tiny model, --steps each; a worker's start-up
(torch, the model) costs several seconds, so runs of a few seconds gain nothing from --jobs.

    python benchmarks/bench_jobs.py --rounds 2 --threads 1 --output results/bench/grid/jobs.json
    python benchmarks/bench_jobs.py --rounds 2 --threads 2 --output results/bench/grid/jobs_threads2.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

SUITE = {"name": "bench-jobs", "version": 1, "description": "4 tiny GRPO runs for timing --jobs",
         "common": {"model": "tiny", "max_steps": 40, "prompts_per_step": 8, "group_size": 8, "max_new_tokens": 24,
                    "eval_limit": 50, "eval_every": 0, "eval_samples": 4, "samples_every": 0,
                    "checkpoint_every": 0, "eval_kl": False, "threads": 1, "save_final": False},
         "algorithms": {"grpo": {}}, "tasks": {"arithmetic": {"task_config": {"difficulty": "easy"}}},
         "seeds": [0, 1, 2, 3]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="alternating (jobs 1, jobs 2) pairs")
    ap.add_argument("--threads", type=int, default=1, help="the suite's threads: a run's at --jobs 1, split at --jobs "
                                                           "2")
    ap.add_argument("--steps", type=int, default=150, help="steps per run: long enough that a worker's start-up is "
                                                           "small")
    ap.add_argument("--output", type=Path, default=Path("results/bench/grid/jobs.json"))
    args = ap.parse_args()
    SUITE["common"]["threads"], SUITE["common"]["max_steps"] = args.threads, args.steps
    work = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    suite = work / "suite.yaml"
    suite.write_text(yaml.safe_dump(SUITE))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows = []
    for rnd in range(args.rounds):
        for jobs in (1, 2):
            out = work / f"out-{jobs}"
            shutil.rmtree(out, ignore_errors=True)
            load = os.getloadavg()[0]
            start = time.perf_counter()
            rc = subprocess.run([sys.executable, "-m", "mathrl", "compare", str(suite), "--jobs", str(jobs), "--quiet",
                                 "--output", str(out)], env=env, capture_output=True).returncode
            rows.append({"round": rnd, "jobs": jobs, "rc": rc, "wall_s": round(time.perf_counter() - start, 1),
                         "load_1min_before": load})
            print(rows[-1], flush=True)
    by = {j: [r["wall_s"] for r in rows if r["jobs"] == j] for j in (1, 2)}
    result = {"suite": SUITE, "cpus": os.cpu_count(), "rows": rows,
              "ratio_jobs2_over_jobs1": [b / a for a, b in zip(by[1], by[2])]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print("jobs 2 / jobs 1:", [round(r, 3) for r in result["ratio_jobs2_over_jobs1"]])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
