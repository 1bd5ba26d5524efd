"""Where a suite's runs execute: one after another in this process, N local processes at once,
or a cluster scheduler through submitit (Slurm; its local executor where there is none).

Warm-start runs go first (every grid run loads one's final/), then the grid. With `jobs` local
processes the suite's threads are split between them: N one-thread runs fill N cores, where one
run of a tiny model could not use a second core (its step is overhead, not arithmetic). A run is
a pure function of its config (compare.run_one), so where it executes cannot change a number.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context
from typing import Any

EXECUTORS = ("local", "submitit")
_parent: int | None = None  # in a pool worker: the pid of the `mathrl compare` that started it


def _call(fn: Callable, run, progress: bool):
    """fn(run, progress) in a worker; a worker orphaned by a killed `mathrl compare` exits once
    its run has stopped (checkpointed) instead of waiting for work that never comes."""
    from mathrl.checkpoint import Interrupted

    try:
        return fn(run, progress)
    except Interrupted as e:
        if _parent is not None and os.getppid() != _parent:
            os._exit(e.exit_code)
        raise


def split_threads(runs: list, jobs: int) -> list:
    """Each of `jobs` concurrent runs gets an equal share of the threads a run was given."""
    if jobs <= 1:
        return runs
    return [replace(r, cfg=replace(r.cfg, threads=max(1, (r.cfg.threads or os.cpu_count() or 1) // jobs)))
            for r in runs]


def execute_all(fn: Callable, runs: list, jobs: int = 1, executor: str = "local",
                options: dict[str, Any] | None = None, progress: bool = True,
                on_done: Callable[[Any], None] = lambda o: None) -> list:
    """fn(run, progress) for every run (warm starts first, each stage to completion; fn must
    be a module-level function, so that it pickles), returning the results in order of
    completion; `on_done` sees each as it lands."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    stages = [stage for stage in ([r for r in runs if r.is_init], [r for r in runs if not r.is_init]) if stage]
    outcomes = []

    def land(outcome) -> None:
        outcomes.append(outcome)
        on_done(outcome)

    if executor == "submitit":
        for stage in stages:
            for outcome in _submitit(fn, stage, jobs, options or {}):
                land(outcome)
    elif jobs <= 1:
        for stage in stages:
            for run in stage:
                land(fn(run, progress))
    else:  # one pool for every stage: a worker's start-up (torch, the model) is paid once
        # spawn, not fork: a forked child would inherit this process's torch thread pools and locks
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                                 initializer=_die_with_parent) as pool:
            for stage in stages:
                futures = [pool.submit(_call, fn, r, False) for r in split_threads(stage, jobs)]
                for future in as_completed(futures):
                    land(future.result())
    return outcomes


def _die_with_parent() -> None:
    """A pool worker outliving `mathrl compare` (killed, or its terminal closed) would go on
    writing a run directory that a rerun also writes: on Linux, the kernel sends the worker
    SIGTERM when its parent dies (and a run's SIGTERM handler checkpoints and stops)."""
    global _parent
    _parent = os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)


def _submitit(fn: Callable, runs: list, jobs: int, options: dict[str, Any]):
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
        pending = [executor.submit(fn, r, False) for r in runs]
    for job in pending:
        yield job.result()
