"""mathrl compare: suites -> runs -> one report; resumable; suite validation.

The end-to-end tests run the real built-in smoke suite on the tiny model, shrunk through the
`overrides` argument (the same route as `mathrl compare --set`), so one pass trains 8 runs.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from mathrl.checkpoint import checkpoint_path
from mathrl.compare import SuiteError, builtin_evals_dir, compare, execute, load_suite, plan, status

# Small enough that the 8 runs of the smoke suite (2 SFT warm starts + 3 algorithms x 2 seeds)
# train in seconds; eval_samples stays > 1 so that pass@k / maj@k reach the report. One thread:
# on a shared 2-core machine two OpenMP threads spin against other processes (measured: a tiny
# run took 60 s wall with 2 threads, 2-7 s with 1).
SHRINK = {"max_steps": 2, "prompts_per_step": 2, "group_size": 2, "max_new_tokens": 6, "eval_limit": 2,
          "eval_every": 0, "eval_samples": 2, "samples_every": 0, "checkpoint_every": 0, "eval_kl": False,
          "threads": 1}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    outcomes = compare("smoke", out, overrides=SHRINK, progress=False, log=lambda line: None)
    return out, outcomes


def test_smoke_suite_trains_every_run_and_reports_them_all(smoke):
    out, outcomes = smoke
    names = [o.run.name for o in outcomes]
    assert sorted(names) == sorted(["init-sft-arithmetic-s0", "init-sft-arithmetic-s1"] + [
        f"{a}-arithmetic-s{s}" for a in ("grpo", "ppo", "online_rft") for s in (0, 1)])
    assert all(o.action == "trained" for o in outcomes)
    summary = json.loads((out / "summary.json").read_text())
    # the warm starts are reported apart from the compared runs
    assert sorted(r["name"] for r in summary["runs"] + summary["warm_start"]) == sorted(names)
    assert sorted(r["name"] for r in summary["warm_start"]) == ["init-sft-arithmetic-s0", "init-sft-arithmetic-s1"]
    report = (out / "report.md").read_text()
    assert all(name in report for name in names)
    assert "## Suite" in report and "equal samples, 2 steps x 2 prompts x 2 samples" in report
    for o in outcomes:
        assert (o.run.path / "eval" / "final.json").is_file()
        assert not (o.run.path / "checkpoints").exists()  # finished runs are never resumed
        config = json.loads((o.run.path / "config.json").read_text())
        if not o.run.is_init:  # every algorithm started from its seed's SFT warm start
            assert config["model"] == str(out / "runs" / f"init-sft-arithmetic-s{config['seed']}" / "final")
            assert (config["max_steps"], config["prompts_per_step"], config["group_size"]) == (2, 2, 2)


def test_second_call_skips_every_finished_run(smoke):
    out, first = smoke
    stamps = {o.run.name: os.stat(o.run.path / "metrics.jsonl").st_mtime_ns for o in first}
    lines = []
    again = compare("smoke", out, overrides=SHRINK, progress=False, log=lines.append)
    assert [o.action for o in again] == ["skipped"] * len(first)
    assert stamps == {o.run.name: os.stat(o.run.path / "metrics.jsonl").st_mtime_ns for o in again}
    assert sum("skipped (finished)" in line for line in lines) == len(first)
    assert [o.final_acc for o in again] == [o.final_acc for o in first]


def test_a_run_killed_after_a_checkpoint_is_resumed_from_it(tmp_path):
    suite = load_suite("smoke")
    suite.seeds = [0]
    shrink = {**SHRINK, "checkpoint_every": 1}
    runs = plan(suite, tmp_path, shrink, only=["grpo"])
    for run in runs:  # execute() alone keeps the checkpoints (compare() prunes finished ones)
        execute(run, progress=False)
    grpo = runs[-1]
    # as if killed during step 2: no final eval, no step-2 checkpoint, step 2 half logged
    (grpo.path / "eval" / "final.json").unlink()
    shutil.rmtree(checkpoint_path(grpo.path / "checkpoints", 2))
    assert status(grpo) == "resume"
    outcomes = compare(suite, tmp_path, shrink, only=["grpo"], progress=False, log=lambda line: None)
    assert [o.action for o in outcomes] == ["skipped", "resumed"]
    assert (grpo.path / "eval" / "final.json").is_file()
    steps = [json.loads(x)["step"] for x in (grpo.path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 2]  # step-0 eval, step 1 kept, step 2 redone once, the final eval


def test_a_changed_suite_refuses_to_reuse_finished_runs(smoke):
    out, _ = smoke
    suite = load_suite("smoke")
    suite.common = {**suite.common, "lr": 0.5}
    with pytest.raises(SuiteError, match="different config.*lr"):
        compare(suite, out, overrides=SHRINK, dry_run=True, log=lambda line: None)


def test_the_flops_budget_gives_costlier_algorithms_fewer_steps(tmp_path):
    spec = yaml.safe_load((builtin_evals_dir() / "smoke.yaml").read_text())
    del spec["common"]["max_steps"], spec["init_from"]
    spec["budget"] = {"flops": 2.0e10}
    path = tmp_path / "budget.yaml"
    path.write_text(yaml.safe_dump(spec))
    runs = {r.algo: r for r in plan(load_suite(path), tmp_path)}
    # PPO pays 2 epochs, a pi_old pass and a reference pass per step; online RFT has no KL
    assert runs["ppo"].flops_per_step > runs["grpo"].flops_per_step > runs["online_rft"].flops_per_step
    assert runs["ppo"].cfg.max_steps < runs["grpo"].cfg.max_steps <= runs["online_rft"].cfg.max_steps
    for r in runs.values():
        assert r.cfg.max_steps * r.flops_per_step <= 2.0e10 < (r.cfg.max_steps + 1) * r.flops_per_step


@pytest.mark.parametrize("change, message", [
    ({"algorithms": {"grpo": {}, "magic": {}}}, "unknown algorithm 'magic'"),
    ({"common": {"learning_rate": 1e-5}}, "unknown config key 'learning_rate'"),
    ({"algorithms": {"ppo": {"kl_coef": -1}}}, "algorithms.ppo: kl_coef must be >= 0"),
    ({"common": {"seed": 3}}, "common.seed is set by the grid"),
    ({"tasks": ["no-such-task"]}, "unknown task 'no-such-task'"),
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"version": "one"}, "version must be an integer"),
    ({"benchmark": "x"}, "unknown suite key"),
    ({"budget": {"flops": 1e12}}, "budget.flops sets max_steps"),
    ({"common": {"eval_limit": 0}}, "eval_limit must be > 0"),
    ({"init_from": {"algo": "sft"}}, "init_from needs at least 'algo' and 'steps'"),
    ({"init_from": {"algo": "magic", "steps": 2}}, "init_from.algo: unknown algorithm 'magic'"),
    # test_fuzz
    ({"init_from": {"algo": [None], "steps": 2}}, r"init_from.algo must be an algorithm name, got \[None\]"),
])
def test_invalid_suites_fail_with_one_line_naming_the_key(tmp_path, change, message):
    spec = {**yaml.safe_load((builtin_evals_dir() / "smoke.yaml").read_text()), **change}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SuiteError, match=message) as err:
        plan(load_suite(path), tmp_path)
    assert "\n" not in str(err.value) and "bad.yaml" in str(err.value)


def test_unknown_suite_and_unknown_only_algorithm(tmp_path):
    with pytest.raises(SuiteError, match="unknown suite 'nope'; built-in: .*smoke"):
        load_suite("nope")
    with pytest.raises(SuiteError, match="--only dapo: not an algorithm of suite smoke"):
        plan(load_suite("smoke"), tmp_path, only=["dapo"])


def test_builtin_suites_are_valid_and_say_what_they_reproduce(tmp_path):
    for path in sorted(builtin_evals_dir().glob("*.yaml")):
        suite = load_suite(path)
        assert suite.name == path.stem and suite.description and suite.finding
        assert path.read_text().startswith("#")  # the header comment: what it reproduces, and how
        runs = plan(suite, tmp_path)
        assert len([r for r in runs if not r.is_init]) == len(suite.algorithms) * len(suite.tasks) * len(suite.seeds)


def test_cli_compare_dry_run_lists_the_plan_and_errors_exit_2(tmp_path):
    from typer.testing import CliRunner

    from mathrl.cli import app

    result = CliRunner().invoke(app, ["compare", "smoke", "--dry-run", "--output", str(tmp_path), "--only", "grpo"])
    assert result.exit_code == 0, result.output
    assert "[4/4] grpo-arithmetic-s1: new" in result.output and not (tmp_path / "runs").exists()
    result = CliRunner().invoke(app, ["compare", "nope"])
    assert result.exit_code == 2 and "unknown suite 'nope'" in result.output
