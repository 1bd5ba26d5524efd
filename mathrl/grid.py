"""Where a suite's runs execute: one after another in this process, N local processes at once,
or a cluster scheduler through submitit (Slurm; its local executor where there is none).

Warm-start runs go first (every grid run loads one's final/), then the grid. With `jobs` local
processes the suite's threads are split between them: N one-thread runs fill N cores, where one
run of a tiny model could not use a second core (its step is overhead, not arithmetic). A run is
a pure function of its config (compare.execute), so where it executes cannot change a number.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context
from typing import Any

EXECUTORS = ("local", "submitit")


def run_one(run, progress: bool = False):
    """Bring one planned run to done and return its compare.Outcome (also in a child process or
    a scheduler job: everything it needs travels in `run`)."""
    from mathrl import compare
    from mathrl.run_state import RunAborted

    start = time.time()
    try:
        action = compare.execute(run, progress)
    except RunAborted as e:
        return compare.Outcome(run, "aborted", seconds=time.time() - start, note=str(e).splitlines()[0])
    compare.finish(run)
    return compare.Outcome(run, action, compare.final_accuracy(run.path), time.time() - start)


def split_threads(runs: list, jobs: int) -> list:
    """Each of `jobs` concurrent runs gets an equal share of the threads a run was given."""
    if jobs <= 1:
        return runs
    return [replace(r, cfg=replace(r.cfg, threads=max(1, (r.cfg.threads or os.cpu_count() or 1) // jobs)))
            for r in runs]


def execute_all(runs: list, jobs: int = 1, executor: str = "local", options: dict[str, Any] | None = None,
                progress: bool = True, on_done: Callable[[Any], None] = lambda o: None) -> list:
    """Run `runs` (warm starts first, each stage to completion) and return their outcomes in
    order of completion; `on_done` sees each as it lands."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    outcomes = []
    for stage in ([r for r in runs if r.is_init], [r for r in runs if not r.is_init]):
        if not stage:
            continue
        if executor == "submitit":
            done = _submitit(stage, jobs, options or {})
        elif jobs <= 1:
            done = (run_one(r, progress) for r in stage)
        else:
            done = _processes(split_threads(stage, jobs), jobs)
        for outcome in done:
            outcomes.append(outcome)
            on_done(outcome)
    return outcomes


def _processes(runs: list, jobs: int):
    # spawn, not fork: a forked child would inherit this process's torch thread pools and locks
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_one, r, False) for r in runs]
        for future in as_completed(futures):
            yield future.result()


def _submitit(runs: list, jobs: int, options: dict[str, Any]):
    """One scheduler job per run, at most `jobs` running at once (a Slurm job array's
    parallelism). `options` go to submitit's update_parameters, e.g. slurm_partition=...,
    timeout_min=...; `cluster=local` forces submitit's local executor (how the tests run it)."""
    try:
        import submitit
    except ImportError:
        raise ValueError("--executor submitit needs submitit: pip install 'mathrl[cluster]'") from None
    options = dict(options)
    cluster = options.pop("cluster", None)
    folder = options.pop("folder", str(runs[0].path.parent.parent / "submitit" / "%j"))
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    threads = max(r.cfg.threads or 1 for r in runs)
    executor.update_parameters(**{"cpus_per_task": threads, "slurm_array_parallelism": jobs, **options})
    with executor.batch():
        pending = [executor.submit(run_one, r, False) for r in runs]
    for job in pending:
        yield job.result()
