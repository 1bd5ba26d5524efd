"""Where a suite's runs execute (mathrl/grid.py): local processes and submitit give the same
runs, number for number, as one run after another in this process."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import metric_rows
from mathrl.compare import compare
from mathrl.grid import split_threads

SUITE = {"name": "grid-test", "version": 1, "description": "two tiny GRPO runs",
         "common": {"model": "tiny", "max_steps": 2, "prompts_per_step": 2, "group_size": 2, "max_new_tokens": 6,
                    "eval_limit": 2, "eval_every": 0, "eval_samples": 2, "samples_every": 1,
                    "checkpoint_every": 0, "eval_kl": False, "threads": 2},
         "algorithms": {"grpo": {}}, "tasks": ["arithmetic"], "seeds": [0, 1]}


def _metrics(run_dir):
    rows = metric_rows(run_dir)
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    suite = root / "suite.yaml"
    suite.write_text(yaml.safe_dump(SUITE))
    compare(suite, root / "seq", progress=False, log=lambda line: None)
    return suite, root


@pytest.mark.parametrize("executor, options", [
    ("local", {}),
    # submitit's own local executor stands in for Slurm (no cluster here); slow: one Python per job
    pytest.param("submitit", {"cluster": "local"}, marks=pytest.mark.slow),
])
def test_parallel_runs_equal_sequential_runs(sequential, executor, options):
    suite, root = sequential
    lines = []
    out = root / executor
    outcomes = compare(suite, out, progress=False, log=lines.append, jobs=2, executor=executor,
                       executor_options=options)
    assert sorted(o.run.name for o in outcomes) == ["grpo-arithmetic-s0", "grpo-arithmetic-s1"]
    assert all(o.action == "trained" for o in outcomes)
    assert "2 at a time" in lines[0]
    for name in ("grpo-arithmetic-s0", "grpo-arithmetic-s1"):
        assert _metrics(out / "runs" / name) == _metrics(root / "seq" / "runs" / name)
        # local jobs split the machine's threads; a scheduler job gets cpus_per_task = threads
        threads = json.loads((out / "runs" / name / "config.json").read_text())["threads"]
        assert threads == (1 if executor == "local" else 2)
        samples = sorted(p.name for p in (out / "runs" / name / "samples").iterdir())
        assert samples and all(s.endswith(".jsonl.gz") for s in samples)  # finished runs are compressed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairwise"]["rows"] and all("p_holm" in r for r in summary["pairwise"]["rows"])
    (level,) = summary["pairwise"]["levels"]  # one group: its final pass@1 over 2 seeds x 2 problems
    assert level["n"] == 2 and level["problems"] == 2 and level["lo"] <= level["mean"] <= level["hi"]


def test_split_threads_gives_each_job_its_share():
    from mathrl.compare import load_suite, plan

    runs = plan(load_suite("smoke"), "/tmp/unused", {"threads": 4})
    assert {r.cfg.threads for r in split_threads(runs, 2)} == {2}
    assert {r.cfg.threads for r in split_threads(runs, 8)} == {1}  # never 0 (torch's default)
    assert split_threads(runs, 1) == runs


def test_unknown_executor_and_bad_jobs_are_one_line_errors(sequential):
    from mathrl.compare import SuiteError

    suite, root = sequential
    with pytest.raises(ValueError, match="unknown executor"):
        compare(suite, root / "x", progress=False, log=lambda line: None, executor="slurmx")
    with pytest.raises(SuiteError, match="--jobs must be >= 1"):
        compare(suite, root / "y", progress=False, log=lambda line: None, jobs=0)


@pytest.mark.slow  # a real `mathrl compare --jobs 2` process: ~30 s
def test_a_killed_compare_takes_its_workers_with_it(tmp_path):
    """kill -9 of `mathrl compare --jobs 2` must not leave workers writing run directories."""
    import os
    import signal
    import subprocess
    import sys
    import time

    suite = tmp_path / "suite.yaml"
    slow = {**SUITE, "common": {**SUITE["common"], "max_steps": 10_000, "checkpoint_every": 0}}
    suite.write_text(yaml.safe_dump(slow))
    parent = subprocess.Popen([sys.executable, "-m", "mathrl", "compare", str(suite), "--jobs", "2", "--quiet",
                               "--output", str(tmp_path / "out")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = [tmp_path / "out" / "runs" / f"grpo-arithmetic-s{s}" / "metrics.jsonl" for s in (0, 1)]
    deadline = time.time() + 240
    while not all(m.is_file() for m in metrics) and time.time() < deadline:  # both workers are training
        time.sleep(0.5)
    assert all(m.is_file() for m in metrics)
    workers = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split()
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 60
    alive = [w for w in workers if os.path.exists(f"/proc/{w}")]
    while alive and time.time() < deadline:
        time.sleep(0.5)
        alive = [w for w in workers
                 if os.path.exists(f"/proc/{w}") and "Z" not in open(f"/proc/{w}/stat").read().split()[2]]
    assert not alive
