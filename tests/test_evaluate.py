"""The eval harness: greedy accuracy, pass@k / maj@k from samples, KL drift, and `mathrl eval`."""

import json

import torch
from typer.testing import CliRunner

from conftest import write_digit_task
from mathrl.cli import app
from mathrl.evaluate import evaluate, grade_both
from mathrl.models import load_model
from mathrl.tasks import get_task


def test_metrics_and_kl_drift_of_a_model_against_itself_and_another(tmp_path, tiny):
    task = get_task("digit", tasks_dir=str(write_digit_task(tmp_path)))
    problems = task.load("test", limit=5)
    model, tok = tiny
    torch.manual_seed(0)
    summary, rows = evaluate(model, tok, task, problems, 8, n=4, k_values=(1, 4), ref_model=model)
    assert summary["n"] == 5 and len(rows) == 5 and all(len(r["samples"]) == 4 for r in rows)
    assert 0 <= summary["pass@1"] <= summary["pass@4"] <= 1  # pass@k never falls with k
    assert 0 <= summary["maj@4"] <= 1 and summary["accuracy"] == sum(r["correct"] for r in rows) / 5
    assert summary["kl_drift"]["k1_token"] == 0 and summary["kl_drift"]["k3_token"] == 0  # same model
    other, _ = load_model("tiny", seed=1)
    drift = evaluate(model, tok, task, problems, 8, ref_model=other)[0]["kl_drift"]
    assert drift["k3_token"] > 0 and drift["k3_seq"] >= drift["k3_token"]  # per sequence sums tokens


def test_cli_eval_writes_json_and_samples(tmp_path):
    tasks = write_digit_task(tmp_path)
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["eval", "--model", "tiny", "--task", "digit", "--tasks-dir", str(tasks),
                                      "--limit", "3", "--n", "4", "--k", "1,4", "--ref", "tiny",
                                      "--max-new-tokens", "6", "--output", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert {"accuracy", "accuracy_stderr", "pass@1", "pass@4", "maj@4", "kl_drift"} <= set(data)
    assert len(out.with_suffix(".samples.jsonl").read_text().splitlines()) == 3
    bad = CliRunner().invoke(app, ["eval", "--model", "tiny", "--task", "nope"])
    assert bad.exit_code == 2


def test_every_grade_is_reported_strictly_and_leniently():
    """arithmetic-1shot grades `#### N` strictly; its lenient grade (`auto`) also accepts a bare
    last number, so a model that only learns the format cannot pass for one that learns to add."""
    from types import SimpleNamespace

    from mathrl.evaluate import grade_both, sampled_metrics

    task = get_task("arithmetic-1shot")
    assert (task.extractor, task.lenient_extractor) == ("gsm8k", "auto")
    gold = task.load("test", limit=1)[0]
    completions = [f"1 + 1 = {gold.gold}", f"#### {gold.gold}", "#### 1000", "1 + 1 = 1000"]
    batch = SimpleNamespace(completions=completions, problems=[gold] * 4)
    strict, lenient = grade_both(task, completions, batch.problems)
    assert [g.correct for g in strict] == [False, True, False, False]
    assert [g.correct for g in lenient] == [True, True, False, False]
    metrics, rows = sampled_metrics(task, batch, 4, (1, 4))
    assert metrics["pass@1"] == 0.25 and metrics["pass@1_lenient"] == 0.5  # 1 of 4 vs 2 of 4 correct
    assert metrics["pass@4"] == metrics["pass@4_lenient"] == 1.0
    assert rows[0]["samples_correct_lenient"] == [True, True, False, False]
    assert rows[0]["samples_extracted"] == [None, gold.gold, "1000", None]


def test_a_task_graded_by_the_last_number_is_its_own_lenient_grade():
    task = get_task("arithmetic-add2")
    problems = task.load("test", limit=2)
    strict, lenient = grade_both(task, ["12 + 3 = 15", problems[1].gold], problems)
    assert strict is lenient  # graded once


def test_no_kl_sample_is_drawn_while_the_policy_is_the_reference(tmp_path, tiny, monkeypatch):
    """Step 0: KL(pi || pi_ref) is exactly 0, so the eval draws only its greedy rows."""
    import mathrl.evaluate as ev

    task = get_task("digit", tasks_dir=str(write_digit_task(tmp_path)))
    problems = task.load("test", limit=4)
    model, tok = tiny
    calls = []
    generate = ev.hf_generate
    monkeypatch.setattr(ev, "hf_generate", lambda *a, **kw: calls.append(kw.get("greedy", False)) or generate(*a, **kw))
    summary = evaluate(model, tok, task, problems, 8, ref_model=model, policy_is_reference=True)[0]
    assert calls == [True] and summary["kl_drift"] == {"k1_token": 0.0, "k3_token": 0.0, "k1_seq": 0.0, "k3_seq": 0.0}
    calls.clear()
    evaluate(model, tok, task, problems, 8, ref_model=model)
    assert calls == [True, False]  # otherwise one sampled row per problem measures it
