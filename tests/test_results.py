"""Run directory round trips, crash safety of metrics.jsonl and JSON safety."""

import json
import subprocess
from pathlib import Path

import pytest

from mathrl.results import RunDir, environment_info, is_run_dir, jsonable


def test_config_round_trip_and_layout(tmp_path):
    run = RunDir(tmp_path / "run")
    assert not run.path.exists()  # constructing a reader creates nothing
    cfg = {"algo": "grpo", "task": "gsm8k", "seed": 1, "lr": 1e-6, "out": tmp_path / "x"}
    run.write_config(cfg)
    assert is_run_dir(run.path)
    assert run.read_config() == {**cfg, "out": str(tmp_path / "x")}
    assert run.config_path.read_text().startswith("{\n  ")  # pretty, for humans and diffs
    assert [p.name for p in run.path.iterdir()] == ["config.json"]  # no temp file left
    assert run.final_dir == run.path / "final"
    assert run.checkpoints_dir == run.path / "checkpoints"
    assert not is_run_dir(tmp_path)


def test_metrics_append_read_and_non_finite_become_null(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_metrics() == []
    run.append_metrics({"step": 1, "loss/policy": 0.5, "kl/mean": float("nan")})
    run.append_metrics({"step": 2, "loss/policy": float("inf"), "tokens/generated": 12})
    lines = run.metrics_path.read_text().splitlines()
    assert len(lines) == 2
    assert "NaN" not in lines[0] and "Infinity" not in lines[1]
    rows = run.read_metrics()
    assert rows == [
        {"step": 1, "loss/policy": 0.5, "kl/mean": None},
        {"step": 2, "loss/policy": None, "tokens/generated": 12},
    ]
    with pytest.raises(ValueError):
        run.append_metrics({"loss/policy": 1.0})


def test_torn_last_line_is_ignored_and_repaired_on_append(tmp_path):
    run = RunDir(tmp_path)
    run.append_metrics({"step": 1, "a": 1.0})
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 2, "a": 0.')  # crash mid-write
    assert [r["step"] for r in run.read_metrics()] == [1]

    resumed = RunDir(tmp_path)  # a new process resumes and appends
    resumed.append_metrics({"step": 2, "a": 2.0})
    assert [r["step"] for r in resumed.read_metrics()] == [1, 2]
    assert resumed.metrics_path.read_text().count("\n") == 2


def test_corruption_in_the_middle_raises(tmp_path):
    run = RunDir(tmp_path)
    run.metrics_path.write_text('{"step": 1}\n{"step": 2, oops\n{"step": 3}\n')
    with pytest.raises(json.JSONDecodeError):
        run.read_metrics()


def test_rewind_metrics_drops_steps_to_be_redone(tmp_path):
    run = RunDir(tmp_path)
    for s in range(1, 6):
        run.append_metrics({"step": s})
    run.rewind_metrics(3)
    run.append_metrics({"step": 4})
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 3, 4]


def test_evals_and_samples_round_trip(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_evals() == {}
    run.write_eval("final", {"accuracy": 0.5, "pass@4": 0.75, "kl_drift": {"k3_token": 0.01}})
    run.write_eval("step_100", {"accuracy": 0.25})
    evals = run.read_evals()
    assert list(evals) == ["final", "step_100"]
    assert evals["final"]["kl_drift"]["k3_token"] == 0.01

    rows = [{"prompt": "1+1?", "completion": "2", "extracted": "2", "gold": "2",
             "correct": True, "reward": 1.0},
            {"prompt": "ünïcode", "completion": "…", "extracted": None, "gold": "3",
             "correct": False, "reward": 0.0}]  # fmt: skip
    run.write_samples("final", rows)
    assert run.read_samples("final") == rows
    with pytest.raises(ValueError):
        run.write_eval("../escape", {})


def test_jsonable_converts_scalars_and_rejects_unknown():
    np = pytest.importorskip("numpy")
    out = jsonable({"a": np.float32(0.5), "b": np.int64(3), "c": (1, float("-inf")), 4: True})
    assert out == {"a": 0.5, "b": 3, "c": [1, None], "4": True}
    assert isinstance(out["b"], int)
    assert jsonable(np.float64("nan")) is None
    with pytest.raises(TypeError):
        jsonable({"x": object()})


def test_environment_info_versions_and_git(tmp_path):
    info = environment_info(repo=tmp_path)  # not a git repository
    assert info["git_commit"] is None and info["git_dirty"] is None
    assert info["packages"]["sympy"]  # installed: a version string
    assert info["python"].count(".") == 2
    json.dumps(info, allow_nan=False)

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    try:
        subprocess.run([*git, "init", "-q"], check=True)
        (repo / "f.txt").write_text("a")
        subprocess.run([*git, "add", "f.txt"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git not usable here")
    info = environment_info(repo=repo)
    assert len(info["git_commit"]) == 40 and info["git_dirty"] is False
    (repo / "f.txt").write_text("b")
    assert environment_info(repo=repo)["git_dirty"] is True
    assert "hostname" not in json.dumps(info) and str(Path.home()) not in json.dumps(info)
