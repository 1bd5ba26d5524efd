"""Resume is exact or refused (issue 26): a changed setting, a corrupted checkpoint, no usable
checkpoint, a second signal before any checkpoint, an interrupted suite."""

from __future__ import annotations

import json
import os
import shutil
import signal
import zipfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import mathrl.train
from conftest import TINY, comparable, tiny_run
from mathrl.checkpoint import list_checkpoints
from mathrl.cli import app
from mathrl.report import write_report
from mathrl.results import RunDir


@pytest.fixture(scope="module")
def reference(tmp_path_factory, digit_tasks) -> Path:
    """The uninterrupted 4-step run (checkpoints at every step)."""
    return tiny_run(digit_tasks, tmp_path_factory.mktemp("ref") / "run")


def cut_at(reference: Path, run: Path, step: int) -> Path:
    """The reference as a process killed after checkpoint `step` leaves it."""
    shutil.copytree(reference, run)
    for path in list_checkpoints(run / "checkpoints"):
        if int(path.name.split("-")[1]) > step:
            shutil.rmtree(path)
    return run


def resume(run: Path, *args: str):
    return CliRunner().invoke(app, ["run", "--resume", str(run), "--quiet", *args])


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("mathrl: error:")]


# ---- changed settings -------------------------------------------------------------------------

@pytest.mark.parametrize("args, listed", [
    (["--set", "lr=0.1", "--set", "group_size=2"], "group_size 4 -> 2, lr 0.001 -> 0.1; resume without them"),
    (["--algo", "ppo"], "algo 'grpo' -> 'ppo'; algo cannot change on resume, even with --allow-config-change"),
    (["--seed", "5", "--allow-config-change"], "seed 0 -> 5; seed cannot change"),
    (["--set", "advantage=gae", "--allow-config-change"], "the value head (advantage) cannot change"),
])
def test_a_changed_setting_is_refused_with_each_key(tmp_path, reference, args, listed):
    run = cut_at(reference, tmp_path / "run", 2)
    before = (run / "metrics.jsonl").read_bytes(), (run / "config.json").read_bytes()
    result = resume(run, *args)
    assert result.exit_code == 2 and len(errors(result)) == 1 and listed in errors(result)[0], result.output
    assert ((run / "metrics.jsonl").read_bytes(), (run / "config.json").read_bytes()) == before


def test_max_steps_and_cadence_are_exempt(tmp_path, reference):
    run = cut_at(reference, tmp_path / "run", 2)
    result = resume(run, "--max-steps", "5", "--set", "eval_every=2", "--set", "samples_every=3")
    assert result.exit_code == 0, result.output
    assert [r["step"] for r in RunDir(run).read_metrics() if "reward/mean" in r] == [1, 2, 3, 4, 5]
    assert "config_changes" not in RunDir(run).read_config()


def test_allow_config_change_applies_the_change_and_records_its_step(tmp_path, reference):
    run = cut_at(reference, tmp_path / "run", 2)
    result = resume(run, "--set", "lr=0.01", "--set", "temperature=0.7", "--allow-config-change")
    assert result.exit_code == 0, result.output
    config = RunDir(run).read_config()
    assert (config["lr"], config["temperature"]) == (0.01, 0.7)
    assert config["config_changes"] == [{"step": 2, "changes": {"temperature": [1.0, 0.7], "lr": [0.001, 0.01]}}]
    assert config["environment"] == json.loads((reference / "config.json").read_text())["environment"]
    lrs = {r["step"]: r["optim/lr"] for r in RunDir(run).read_metrics() if "optim/lr" in r}
    assert lrs == {1: 0.001, 2: 0.001, 3: 0.01, 4: 0.01}  # in force from the resumed step, not before
    assert "settings changed on resume, from step 2: temperature 1.0 -> 0.7, lr 0.001 -> 0.01" in result.stdout
    report = write_report([run], tmp_path / "report").read_text()
    assert "## Settings changed on resume" in report and "from step 2: temperature 1.0 -> 0.7" in report
    assert resume(run).exit_code == 0  # the next resume compares with the settings now in force


# ---- checkpoints that do not prove their contents ------------------------------------------------

def corrupt_inside_largest_tensor(state_pt: Path) -> None:
    """Overwrite 64 bytes in the middle of the largest tensor record (same size, still a zip)."""
    with zipfile.ZipFile(state_pt) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    data = bytearray(state_pt.read_bytes())
    name_len, extra_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    data[start:start + 64] = b"\x74" * 64  # float32 0x74747474 = 7.7e31
    state_pt.write_bytes(bytes(data))


def test_a_corrupted_byte_inside_a_checkpoint_is_detected_and_the_run_falls_back(tmp_path, reference, capfd):
    run = cut_at(reference, tmp_path / "run", 3)
    newest = list_checkpoints(run / "checkpoints")[-1] / "state.pt"
    corrupt_inside_largest_tensor(newest)
    torch.load(newest, weights_only=False)  # torch itself loads it without a word
    result = resume(run)
    assert result.exit_code == 0, result.output
    assert "step-0000003 is unusable (ValueError: state.pt does not match the hash recorded" in result.stderr
    assert comparable(run) == comparable(reference)  # resumed from step 2 instead


def test_no_usable_checkpoint_is_refused_and_restart_keeps_the_old_results(tmp_path, reference):
    run = cut_at(reference, tmp_path / "run", 2)
    for path in list_checkpoints(run / "checkpoints"):
        corrupt_inside_largest_tensor(path / "state.pt")
    old = (run / "metrics.jsonl").read_bytes()
    result = resume(run)
    assert result.exit_code == 2 and len(errors(result)) == 1, result.output
    assert "found 2 checkpoint folder(s) (step-0000001, step-0000002), none usable" in errors(result)[0]
    assert "add --restart to train again from step 0" in errors(result)[0]
    assert (run / "metrics.jsonl").read_bytes() == old
    result = resume(run, "--restart")
    assert result.exit_code == 0, result.output
    [aside] = run.glob("discarded-*")
    assert (aside / "metrics.jsonl").read_bytes() == old and len(list_checkpoints(aside / "checkpoints")) == 2
    assert comparable(run) == comparable(reference)


# ---- signals ----------------------------------------------------------------------------------

def test_a_second_sigterm_before_any_checkpoint_names_none(tmp_path, digit_tasks, monkeypatch):
    inner = mathrl.train.train_step

    def twice_in_step_2(state):
        if state.step == 1:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
        return inner(state)

    monkeypatch.setattr(mathrl.train, "train_step", twice_in_step_2)
    run = tmp_path / "run"
    sets = [a for k, v in {**TINY, "checkpoint_every": "0"}.items() for a in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(app, ["run", "--task", "digit", "--tasks-dir", str(digit_tasks), "--output", str(run),
                                      "--max-steps", "3", "--quiet", *sets])
    assert result.exit_code == 143 and not list_checkpoints(run / "checkpoints"), result.output
    assert len(errors(result)) == 1 and "no checkpoint was saved" in errors(result)[0], result.stderr
    assert f"--resume {run} --restart" in errors(result)[0]


def test_an_interrupted_compare_says_where_it_stopped_and_how_to_continue(tmp_path, digit_tasks, monkeypatch):
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: s\nversion: 1\ndescription: d\nalgorithms: [grpo]\ntasks: [digit]\nseeds: [0, 1]\n"
                     f"common: {{tasks_dir: {digit_tasks}, model: tiny, max_steps: 2, prompts_per_step: 2, "
                     f"group_size: 2, max_new_tokens: 4, eval_limit: 2, threads: 1, save_final: false, "
                     f"checkpoint_every: 1}}\n")
    inner = mathrl.train.train_step

    def ctrl_c_in_seed_1(state):
        if state.cfg.seed == 1 and state.step == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return inner(state)

    monkeypatch.setattr(mathrl.train, "train_step", ctrl_c_in_seed_1)
    args = ["compare", str(suite), "--output", str(tmp_path / "out"), "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130, result.output
    assert f"interrupted after step 2; checkpoint saved in {tmp_path}/out/runs/grpo-digit-s1/" in result.stderr
    assert "1 of 2 runs finished, not grpo-digit-s1; the same command continues" in result.stderr
    assert errors(result)[-1].endswith("to continue, run the same `mathrl compare` command again")
    monkeypatch.setattr(mathrl.train, "train_step", inner)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and "[1/2] grpo-digit-s0: skipped" in result.stderr, result.output
    assert "[2/2] grpo-digit-s1: resuming" in result.stderr
