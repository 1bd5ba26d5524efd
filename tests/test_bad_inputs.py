"""Bad input through the real CLI (issue 8): one line saying what is wrong and how to fix it,
exit code 2, no traceback (unless --debug), and no run directory left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DIGIT_TASK
from typer.testing import CliRunner

from mathrl.cli import app


def _task(folder: Path, name: str, data: str | None, yaml_text: str | None = None) -> None:
    text = yaml_text if yaml_text is not None else DIGIT_TASK.replace("name: digit", f"name: {name}").replace(
        "digit.jsonl", f"{name}.jsonl")
    (folder / f"{name}.yaml").write_text(text)
    if data is not None:
        (folder / f"{name}.jsonl").write_text(data)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A folder with good and broken tasks, configs, models and run directories."""
    root = tmp_path_factory.mktemp("bad")
    tasks = root / "tasks"
    tasks.mkdir()
    _task(tasks, "digit", "".join(json.dumps({"q": f"Say {d}", "a": str(d)}) + "\n" for d in range(10)))
    _task(tasks, "brokenyaml", None, "name: brokenyaml\nversion: [1\n")
    _task(tasks, "badjsonl", '{"q": "a", "a": "1"}\n{"q": "b", "a": \n')
    _task(tasks, "nofield", '{"question": "Say 1", "a": "1"}\n')
    _task(tasks, "notrecords", '[1, 2]\n')
    _task(tasks, "empty", "")
    _task(tasks, "nodata", None)
    _task(tasks, "badspec", None, DIGIT_TASK.replace("grader: {", "grader: {nonsense: 1, "))
    good = '{"q": "Say 1", "a": "1"}\n'
    _task(tasks, "nofield3", good + "\n" + good + '{"question": "Say 2", "a": "2"}\n')  # line 4: blank line 2
    _task(tasks, "badutf8", None)
    (tasks / "badutf8.jsonl").write_bytes(good.encode() + b'{"q": "Say \xff", "a": "1"}\n')
    _task(tasks, "badgold", good + '{"q": "Say 3", "a": null}\n')
    for name, suffix, data in [("shortcsv", "csv", "q,a\nSay 1,1\nSay 2\n"), ("longcsv", "csv", "q,a\nSay 1,1,9\n"),
                               ("badjson", "json", '[{"q": "Say 1", "a": "1"},\n {"q": }]'),
                               ("jsonnotobj", "json", '[{"q": "Say 1", "a": "1"}, 7]')]:
        _task(tasks, name, None, DIGIT_TASK.replace("name: digit", f"name: {name}").replace(
            "digit.jsonl", f"{name}.{suffix}"))
        (tasks / f"{name}.{suffix}").write_text(data)
    _model_folders(root)
    (root / "bad.yaml").write_text("lr: [1e-5\n")
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "unknown.yaml").write_text("learning_rate: 1e-5\n")
    (root / "null_key.yaml").write_text("null: 1\n'': 2\n")  # found by tests/test_fuzz.py: a TypeError before
    (root / "empty_dir").mkdir()
    (root / "not_a_model").mkdir()
    (root / "damaged_run").mkdir()
    (root / "damaged_run" / "config.json").write_text("{not json")
    return root


def _model_folders(root: Path) -> None:
    """tiny saved without its tokenizer, and with a tokenizer larger than its embedding."""
    from mathrl.models import build_tiny

    model, tokenizer = build_tiny()
    model.save_pretrained(root / "no_tokenizer")
    tokenizer.save_pretrained(root / "small_embedding")
    model.resize_token_embeddings(len(tokenizer) - 8)
    model.save_pretrained(root / "small_embedding")


def _args(world: Path, *extra: str, task: str = "digit") -> list[str]:
    return ["run", "--task", task, "--tasks-dir", str(world / "tasks"), "--output", str(world / "out"),
            "--max-steps", "1", "--quiet", "--set", "threads=1", "--model", "tiny", *extra]


# name -> (arguments after `mathrl`, a phrase the message must contain)
CASES = {
    "unknown task": (lambda w: _args(w, task="no-such-task"), "unknown task 'no-such-task'"),
    "unknown algorithm": (lambda w: _args(w, "--algo", "ppo2"), "unknown algorithm 'ppo2'; choose one of"),
    "unknown advantage": (lambda w: _args(w, "--set", "advantage=gpro"), "unknown advantage 'gpro'; choose one of"),
    "unknown model name": (lambda w: _args(w, "--model", "no-such-model"), "use --model tiny"),
    "hub id, hub unreachable": (lambda w: _args(w, "--model", "some-org/some-model"), "HF_HUB_OFFLINE=1"),
    "model folder missing": (lambda w: _args(w, "--model", str(w / "nope" / "model")), "does not exist"),
    "folder that is no model": (lambda w: _args(w, "--model", str(w / "not_a_model")), "without config.json"),
    "malformed config YAML": (lambda w: _args(w, "--config", str(w / "bad.yaml")), "malformed YAML"),
    "config YAML not a mapping": (lambda w: _args(w, "--config", str(w / "list.yaml")), "expected a mapping"),
    "config YAML unknown key": (lambda w: _args(w, "--config", str(w / "unknown.yaml")), "unknown config key(s) "
                                                                                         "learning_rate"),
    "config YAML null and empty keys": (lambda w: _args(w, "--config", str(w / "null_key.yaml")),
                                        "unknown config key(s) None, ''"),
    "config file missing": (lambda w: _args(w, "--config", str(w / "none.yaml")), "config file not found"),
    "malformed task YAML": (lambda w: _args(w, task="brokenyaml"), "invalid YAML at line"),
    "task YAML unknown field": (lambda w: _args(w, task="badspec"), "unknown field 'grader.nonsense'"),
    "task file missing": (lambda w: _args(w, task=str(w / "none.yaml")), "does not exist"),
    "malformed JSONL": (lambda w: _args(w, task="badjsonl"), "line 2 is not JSON"),
    "missing dataset field": (lambda w: _args(w, task="nofield"), "no field 'q' (the record has: question, a)"),
    "records that are not objects": (lambda w: _args(w, task="notrecords"), "notrecords.jsonl: line 1 is a JSON list"),
    "missing field, named by line": (lambda w: _args(w, task="nofield3"), "nofield3.jsonl: line 4 (task 'nofield3'"),
    "JSONL line not UTF-8": (lambda w: _args(w, task="badutf8"), "badutf8.jsonl: line 2 is not UTF-8"),
    "null gold answer": (lambda w: _args(w, task="badgold"), "badgold.jsonl: line 2 (task 'badgold', split 'train'): "
                                                             "field 'a' is empty"),
    "CSV row with too few cells": (lambda w: _args(w, task="shortcsv"), "shortcsv.csv: line 3 has 1 fields, the header "
                                                                        "has 2"),
    "CSV row with too many cells": (lambda w: _args(w, task="longcsv"), "longcsv.csv: line 2 has 3 fields"),
    "malformed .json data": (lambda w: _args(w, task="badjson"), "badjson.json: line 2 is not valid JSON"),
    ".json record not an object": (lambda w: _args(w, task="jsonnotobj"), "jsonnotobj.json: record 1 is a JSON int"),
    "model folder without a tokenizer": (lambda w: _args(w, "--model", str(w / "no_tokenizer")), "without a tokenizer"),
    "tokenizer larger than the embedding": (lambda w: _args(w, "--model", str(w / "small_embedding")),
                                            "the tokenizer has 115 tokens but the model's embedding only 107 rows"),
    "empty dataset": (lambda w: _args(w, task="empty"), "has no training problems"),
    "data file missing": (lambda w: _args(w, task="nodata"), "nodata.jsonl does not exist"),
    "data dir without the files": (lambda w: ["run", "--task", "gsm8k", "--data", str(w / "empty_dir"), "--output",
                                              str(w / "out"), "--quiet", "--model", "tiny"], "no data found"),
    "eval split missing": (lambda w: _args(w, "--set", "eval_split=validation"), "no split 'validation'"),
    "negative lr": (lambda w: _args(w, "--set", "lr=-1e-5"), "lr must be > 0"),
    "NaN lr": (lambda w: _args(w, "--set", "lr=nan"), "lr must be > 0"),
    "group_size 1 with GRPO": (lambda w: _args(w, "--set", "group_size=1"), "set group_size >= 2"),
    "max_new_tokens 0": (lambda w: _args(w, "--set", "max_new_tokens=0"), "max_new_tokens must be >= 1"),
    "--set key that does not exist": (lambda w: _args(w, "--set", "learning_rate=1e-5"), "unknown config key "
                                                                                         "'learning_rate'"),
    "--set without =": (lambda w: _args(w, "--set", "lr"), "--set expects key=value"),
    "--set of the wrong type": (lambda w: _args(w, "--set", "group_size=four"), "group_size expects a int"),
    "--max-steps 0": (lambda w: _args(w, "--max-steps", "0"), "max_steps must be >= 1"),
    "minibatches not dividing": (lambda w: _args(w, "--set", "minibatches=3"), "must divide the batch size"),
    "unknown kl_estimator": (lambda w: _args(w, "--set", "kl_estimator=k9"), "kl_estimator must be one of"),
    "task_config for a file task": (lambda w: _args(w, "--set", "task_config={digits: 2}"), "task_config given"),
    "--resume of a folder that is no "
    "run": (lambda w: ["run", "--resume", str(w / "empty_dir")], "is not a run directory"),
    "--resume of a damaged config.json": (lambda w: ["run", "--resume", str(w / "damaged_run")], "is not valid JSON"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_clean_line_exit_2_and_no_run_dir(world, name):
    make_args, phrase = CASES[name]
    result = CliRunner().invoke(app, make_args(world))
    errors = [line for line in result.stderr.splitlines() if line.startswith("mathrl: error:")]
    assert result.exit_code == 2, result.output
    assert len(errors) == 1 and phrase in errors[0], result.stderr
    assert "Traceback" not in result.output
    assert not (world / "out").exists(), "a failed start left a run directory behind"


def test_device_cuda_without_a_gpu(world):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    result = CliRunner().invoke(app, _args(world, "--set", "device=cuda"))
    assert result.exit_code == 2 and "use --set device=cpu" in result.stderr
    assert not (world / "out").exists()


def test_output_that_already_holds_a_run_is_refused_untouched(world, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"algo": "grpo"}')
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    args = _args(world)
    args[args.index("--output") + 1] = str(run)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and f"--resume {run}" in result.stderr
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "metrics.jsonl"]
    assert (run / "metrics.jsonl").read_text() == '{"step": 1}\n'


def test_subprocess_exit_code_and_debug_traceback(world):
    # the installed entry point, not CliRunner: a real exit status and a real stderr
    cmd = [sys.executable, "-m", "mathrl", "run", "--algo", "ppo2", "--output", str(world / "out")]
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2
    assert plain.stderr.strip() == ("mathrl: error: unknown algorithm 'ppo2'; choose one of grpo, grpo_ps, dr_grpo, "
                                    "dapo, rloo, reinforce_pp, ppo, online_rft, offline_rft, sft, gspo, cispo, "
                                    "reinforce")
    debug = subprocess.run([*cmd, "--debug"], capture_output=True, text=True, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "ConfigError" in debug.stderr
    assert not (world / "out").exists()
