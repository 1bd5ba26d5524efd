"""`mathrl tasks list | show | check | new`, through the real `mathrl` app."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from conftest import REPO
from mathrl.cli import app
from mathrl.tasks import get_task



def mathrl(*args: str):
    return CliRunner().invoke(app, ["tasks", *args], catch_exceptions=False)


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mathrl: error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_list_shows_every_task_with_version_source_and_sizes():
    result = mathrl("list")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert {"gsm8k", "math500", "arithmetic", "gsm-symbolic"} <= set(rows)
    assert "hub:openai/gsm8k" in rows["gsm8k"] and "test=1319" in rows["gsm8k"]
    assert "reasoning_gym:gsm_symbolic" in rows["gsm-symbolic"]


def test_show_prints_resolved_spec_and_a_rendered_prompt():
    result = mathrl("show", "arithmetic")
    assert result.exit_code == 0, result.output
    spec_text = result.output.split("# ---- prompt")[0]
    spec = yaml.safe_load(spec_text)
    assert spec["name"] == "arithmetic" and spec["grader"]["extractor"] == "gsm8k"
    assert "[user]\nWhat is " in result.output and "#### " in result.output.split("SFT target")[1]


def test_check_passes_on_a_builtin_and_reports_counts():
    result = mathrl("check", "gsm-symbolic", "--limit", "20", "--quiet")
    assert result.exit_code == 0, result.output
    assert "gsm-symbolic@1: ok" in result.output and "test/golds 20" in result.output


def test_errors_are_one_line(tmp_path, monkeypatch):
    assert "unknown task 'nope'; known: arithmetic" in one_line_error(mathrl("show", "nope"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nversion: 1\n")
    assert "missing required field" in one_line_error(mathrl("check", str(bad)))
    monkeypatch.delenv("MATHRL_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network, no waiting
    message = one_line_error(mathrl("show", "math500", "--data", str(tmp_path)))
    assert "task 'math500' split 'test': no data found" in message and "4) Hub" in message
    result = mathrl("check", "math500", "--data", str(tmp_path), "--quiet")
    assert result.exit_code == 1 and "no data found" in result.output
    result = mathrl("check", "math500", "--data", str(tmp_path), "--allow-missing-data")
    assert result.exit_code == 0 and "test/skipped (no data) 0" in result.output


def test_new_writes_a_task_that_passes_check_and_loads_for_training(tmp_path):
    data = tmp_path / "capitals.jsonl"
    rows = [{"prompt": f"What is {i} squared?", "target": str(i * i), "steps": f"{i}*{i}"}
            for i in range(25)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    user = tmp_path / "user_tasks"
    result = mathrl("new", "squares", "--jsonl", str(data), "--question-field", "prompt",
                    "--answer-field", "target", "--tasks-dir", str(user))
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load((user / "squares.yaml").read_text())
    assert spec["source"]["files"] == {"train": f"{data}[:80%]", "test": f"{data}[80%:]"}
    assert spec["source"]["sizes"] == {"train": 20, "test": 5}
    assert {ex["correct"] for ex in spec["examples"]} == {True, False}
    result = mathrl("check", "squares", "--tasks-dir", str(user), "--quiet")
    assert result.exit_code == 0, result.output
    assert "squares@1: ok" in result.output and "train/golds 20" in result.output
    # what `mathrl run --task squares --tasks-dir DIR` needs: get_task and a train split
    task = get_task("squares", tasks_dir=str(user))
    assert len(task.load("train")) == 20 and task.max_new_tokens >= 512
    # again: refuses to overwrite; a wrong field name lists the real ones
    assert "exists; pass --force" in one_line_error(mathrl(
        "new", "squares", "--jsonl", str(data), "--question-field", "prompt",
        "--answer-field", "target", "--tasks-dir", str(user)))
    assert "fields: prompt, target, steps" in one_line_error(mathrl(
        "new", "other", "--jsonl", str(data), "--question-field", "question",
        "--answer-field", "target", "--tasks-dir", str(user)))


@pytest.mark.parametrize("extractor", ["gsm8k", "answer_is", "answer_colon", "last_number"])
def test_new_with_other_extractors_passes_check(tmp_path, extractor):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"q": f"{i}+1?", "a": i + 1}) + "\n" for i in range(12)))
    result = mathrl("new", "t", "--jsonl", str(data), "--question-field", "q",
                    "--answer-field", "a", "--tasks-dir", str(tmp_path), "--extractor",
                    extractor, "--mode", "numeric")
    assert result.exit_code == 0, result.output
    result = mathrl("check", "t", "--tasks-dir", str(tmp_path), "--quiet")
    assert result.exit_code == 0, result.output


def test_cli_startup_does_not_import_torch():
    code = ("import sys; from typer.testing import CliRunner; from mathrl.cli import app; "
            "r = CliRunner().invoke(app, ['tasks', 'list']); assert r.exit_code == 0, r.output; "
            "heavy = [m for m in ('torch', 'datasets', 'reasoning_gym', 'sympy') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
