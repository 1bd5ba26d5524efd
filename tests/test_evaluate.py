"""The eval harness: greedy accuracy, pass@k / maj@k from samples, KL drift, and `mathrl eval`."""

import json
import math
from fractions import Fraction
from types import SimpleNamespace

import pytest
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
    correct = [r["samples_correct"] for r in rows]
    assert summary["pass@1"] == pytest.approx(sum(sum(c) / 4 for c in correct) / 5)
    assert summary["pass@4"] == pytest.approx(sum(any(c) for c in correct) / 5)
    assert summary["maj@4"] == pytest.approx(sum(_majority_right(r) for r in rows) / 5)
    assert summary["accuracy"] == sum(r["correct"] for r in rows) / 5
    assert summary["kl_drift"]["k1_token"] == 0 and summary["kl_drift"]["k3_token"] == 0  # same model
    other, _ = load_model("tiny", seed=1)
    drift = evaluate(model, tok, task, problems, 8, ref_model=other)[0]["kl_drift"]
    assert drift["k3_token"] > 0 and drift["k3_seq"] >= drift["k3_token"]  # per sequence sums tokens


def _majority_right(row) -> bool:
    """The most frequent value among the extracted answers (ties: the first seen) is correct."""
    votes: dict[Fraction, list] = {}
    for answer, right in zip(row["samples_extracted"], row["samples_correct"]):
        if answer is not None:
            votes.setdefault(Fraction(answer), []).append(right)
    return bool(votes) and max(votes.values(), key=len)[0]


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


def _canned(texts_by_n: dict[int, list[str]], calls: list | None = None):
    """hf_generate's stand-in: the given completions (key 0: the greedy ones, else by samples per
    problem), 3 tokens each, the third row truncated; each call's keyword arguments go to `calls`."""
    def generate(model, tokenizer, problems, n, max_new_tokens, **kw):
        texts = texts_by_n[0 if kw.get("greedy") else n]
        rows = [p for p in problems for _ in range(n)]
        assert len(texts) == len(rows)
        if calls is not None:
            calls.append({"n": n, **{k: v for k, v in kw.items() if k != "on_rows"}})
        kw["on_rows"](len(rows))
        return SimpleNamespace(completions=texts, problems=rows, completion_mask=torch.ones(len(rows), 3),
                               truncated=torch.tensor([i == 2 for i in range(len(rows))]))
    return generate


def test_evaluate_reports_the_lenient_grade_of_a_task_whose_extractors_differ(monkeypatch):
    """arithmetic-1shot: strict `####`, lenient `auto`. Every summary number by hand."""
    import mathrl.evaluate as ev

    task = get_task("arithmetic-1shot")
    problems = task.load("test", limit=4)
    g = [p.gold for p in problems]
    assert "7777" not in g
    greedy = [f"#### {g[0]}", f"so {g[1]}", "#### 7777", "no idea"]  # strict 1 of 4, lenient 2 of 4
    sampled = [f"#### {g[0]}", f"#### {g[0]}", "#### 7777",  # majority right, in both grades
               "#### 7777", "#### 7777", f"#### {g[1]}",  # majority wrong, one right
               f"{g[2]}", f"{g[2]}", "#### 7777",  # right without the format: only the lenient vote wins
               "", "", ""]  # no answer at all
    monkeypatch.setattr(ev, "hf_generate", _canned({0: greedy, 3: sampled}))
    summary, rows = ev.evaluate(torch.nn.Module(), None, task, problems, 8, n=3, k_values=(5, 1, 3))
    assert summary["accuracy"] == 0.25 and summary["accuracy_lenient"] == 0.5
    # stderr = sqrt(var / n) with the sample variance: [1,0,0,0] -> sqrt(0.25 / 4); [1,1,0,0] -> sqrt(1/3 / 4)
    assert summary["accuracy_stderr"] == pytest.approx(0.25)
    assert summary["accuracy_lenient_stderr"] == pytest.approx(math.sqrt(1 / 12))
    assert summary["no_answer_frac"] == 0.5 and summary["truncated_frac"] == 0.25 and summary["len_mean"] == 3.0
    assert (summary["n"], summary["task"], summary["task_version"]) == (4, task.name, task.version)
    assert [(r["correct"], r["correct_lenient"]) for r in rows] == [(True, True), (False, True), (False, False),
                                                                    (False, False)]
    assert {k: rows[1][k] for k in ("id", "completion", "extracted", "gold", "reason")} == {
        "id": problems[1].id, "completion": f"so {g[1]}", "extracted": None, "gold": g[1], "reason": "no_answer"}
    # k = 5 > n = 3 is skipped, the k after it still computed.
    # pass@1 is the share of correct samples: strict (2/3 + 1/3) / 4, lenient (2/3 + 1/3 + 2/3) / 4
    assert "pass@5" not in summary and "maj@5" not in summary
    assert summary["pass@1"] == pytest.approx(1 / 4) and summary["pass@1_lenient"] == pytest.approx(5 / 12)
    assert summary["pass@3"] == 0.5 and summary["pass@3_lenient"] == 0.75
    assert summary["maj@1"] == 0.25 and summary["maj@1_lenient"] == 0.5  # the first sample alone
    assert summary["maj@3"] == 0.25 and summary["maj@3_lenient"] == 0.5
    assert {k: rows[2][k] for k in ("samples", "samples_extracted", "samples_correct", "samples_extracted_lenient",
                                    "samples_correct_lenient")} == {
        "samples": sampled[6:9], "samples_extracted": [None, None, "7777"], "samples_correct": [False] * 3,
        "samples_extracted_lenient": [g[2], g[2], "7777"], "samples_correct_lenient": [True, True, False]}


def test_majority_votes_pool_the_answers_the_tasks_mode_calls_equal():
    """7777 and 7777.0 are one answer in numeric mode (two votes beat the right one), two in exact mode."""
    from mathrl.evaluate import sampled_metrics

    for mode, majority_right in (("numeric", 0.0), ("exact", 1.0)):
        task = get_task("arithmetic-1shot", overrides={"grader": {"mode": mode}})
        problem = task.load("test", limit=1)[0]
        batch = SimpleNamespace(completions=[f"#### {problem.gold}", "#### 7777", "#### 7777.0"],
                                problems=[problem] * 3)
        assert sampled_metrics(task, batch, 3, (3,))[0]["maj@3"] == majority_right, mode


def test_evaluate_defaults_and_its_progress_bar(monkeypatch, capsys):
    """Sampling at T = 1, top-p 1, 64 rows a chunk; KL drift at T = 1 in micro-batches of 8; no
    bar unless asked, and a bar that counts every generated row when asked."""
    import mathrl.evaluate as ev

    task = get_task("arithmetic-1shot")
    problems = task.load("test", limit=4)
    calls, drift = [], []
    monkeypatch.setattr(ev, "hf_generate", _canned({0: ["1"] * 4, 1: ["2"] * 4, 2: ["3"] * 8}, calls))
    monkeypatch.setattr(ev, "kl_drift",
                        lambda model, ref, batch, temperature, mb: drift.append((temperature, mb)) or {})
    ev.evaluate(torch.nn.Module(), None, task, problems, 8, n=2)
    assert calls == [{"n": 1, "greedy": True, "max_rows": 64},
                     {"n": 2, "temperature": 1.0, "top_p": 1.0, "max_rows": 64}]
    calls.clear()
    ev.evaluate(torch.nn.Module(), None, task, problems, 8, ref_model=torch.nn.Module())  # its own KL sample
    assert calls[1] == {"n": 1, "temperature": 1.0, "top_p": 1.0, "max_rows": 64} and drift == [(1.0, 8)]
    assert capsys.readouterr().err == ""
    ev.evaluate(torch.nn.Module(), None, task, problems, 8, progress=True)  # greedy rows only: a total of 4
    err = capsys.readouterr().err
    assert f"eval {task.name}:" in err and "| 0/4 [" in err and "/8" not in err


def test_evaluate_model_resolves_names_and_passes_its_defaults(monkeypatch, tmp_path):
    """`mathrl eval`'s entry point: the model and reference by name at the given seed, in dtype
    auto; the task by name (data and task folders passed on) or as a Task; the first `limit` test
    problems in seed-0 order; T = 1, top-p 1, k = 1, no bar; the model's name in the summary."""
    import mathrl.evaluate as ev
    import mathrl.models
    import mathrl.tasks

    loads, found, calls = [], [], []
    models = {"policy": torch.nn.Module(), "ref": torch.nn.Module()}
    monkeypatch.setattr(mathrl.models, "load_model", lambda name, seed=None, dtype=None:
                        loads.append((name, seed, dtype)) or (models["ref" if name == "tiny-ref" else "policy"], "tok"))
    get = mathrl.tasks.get_task
    monkeypatch.setattr(mathrl.tasks, "get_task", lambda name, **kw: found.append(kw) or get(name, **kw))
    monkeypatch.setattr(ev, "evaluate", lambda *a, **kw: calls.append((a, kw)) or ({"accuracy": 0.5}, ["row"]))
    task = get_task("arithmetic-add2")
    first = [p.id for p in task.load("test", limit=3, seed=0)]
    summary, rows = ev.evaluate_model(tmp_path / "final", "arithmetic-add2", limit=3, data_dir="D", tasks_dir="T")
    assert summary == {"accuracy": 0.5, "model": str(tmp_path / "final")} and rows == ["row"]
    assert loads == [(str(tmp_path / "final"), 0, "auto")] and found == [{"data_dir": "D", "tasks_dir": "T"}]
    (model, tok, the_task, problems, max_new_tokens), kw = calls[0]
    assert model is models["policy"] and tok == "tok" and the_task.name == "arithmetic-add2"
    assert [p.id for p in problems] == first and max_new_tokens == task.max_new_tokens
    assert kw == {"n": 0, "temperature": 1.0, "top_p": 1.0, "k_values": (1,), "ref_model": None, "progress": False}
    loads.clear(), found.clear(), calls.clear()
    ev.evaluate_model("tiny", task, limit=2, ref="tiny-ref", max_new_tokens=5, seed=3, n=4, temperature=0.5,
                      top_p=0.9, k_values=(1, 4), progress=True)
    assert loads == [("tiny", 3, "auto"), ("tiny-ref", 3, "auto")] and found == []  # a Task is used as it is
    (_, _, the_task, problems, max_new_tokens), kw = calls[0]
    assert the_task is task and len(problems) == 2 and max_new_tokens == 5
    assert kw == {"n": 4, "temperature": 0.5, "top_p": 0.9, "k_values": (1, 4), "ref_model": models["ref"],
                  "progress": True}


def _eval_state(*, eval_kl=None, ref_model=None, lora_rank=0, eval_samples=0, batch_size=8, step=0,
                main=True, problems=("p",)):
    """run_eval's view of a run_state.RunState: what it reads, and a record of what it does."""
    import contextlib

    did = {"entered": [], "written": [], "logged": []}

    @contextlib.contextmanager
    def enter(what, value=None):
        did["entered"].append(what)
        yield value

    cfg = SimpleNamespace(eval_kl=eval_kl, lora_rank=lora_rank, eval_samples=eval_samples, temperature=0.7,
                          top_p=0.9, batch_size=batch_size, model="tiny")
    state = SimpleNamespace(
        cfg=cfg, eval_problems=list(problems), ref_model=ref_model, step=step, tokenizer="tok",
        task=SimpleNamespace(name="digit"), max_new_tokens=12, micro_batch_size=3, show_progress=False,
        policy_is_reference=False, meter=SimpleNamespace(phase=lambda name: enter(f"phase {name}")),
        reference=lambda: enter("reference", "REF"), policy_for_generation=lambda: "POLICY",
        accelerator=SimpleNamespace(is_main_process=main),
        run=SimpleNamespace(write_eval=lambda name, s: did["written"].append(("eval", name, s)),
                            write_samples=lambda name, rows: did["written"].append(("samples", name, rows))),
        log=lambda metrics: did["logged"].append(metrics))
    return state, did


def test_run_eval_measures_writes_and_logs_the_runs_eval(monkeypatch):
    """The trainer's eval: evaluate() with the run's settings (k in 1, 4, ..., 64 up to eval_samples,
    rows of max(batch, 16)); the KL drift against the reference only when asked or when one exists
    (a LoRA run's is the adapter-free model); eval/<task>/* metrics; files named by step or
    `final`, written by the main process only; the step-0 eval logged at once, with its warning."""
    import mathrl.evaluate as ev

    calls, warned = [], []
    summary = {"accuracy": 0.5, "accuracy_stderr": 0.1, "len_mean": 7.0, "truncated_frac": 0.25,
               "no_answer_frac": 0.125, "accuracy_lenient": 0.75, "pass@1": 0.4, "maj@4_lenient": 0.3, "n": 4,
               "kl_drift": {"k1_token": 0.01, "k3_token": 0.02}}
    monkeypatch.setattr(ev, "evaluate", lambda *a, **kw: calls.append((a, kw)) or (dict(summary), ["row"]))
    monkeypatch.setattr(ev, "warn_if_no_reward", lambda state, s: warned.append((state, s)))

    state, did = _eval_state(eval_samples=16)
    metrics = ev.run_eval(state)
    (model, tok, task, problems, max_new), kw = calls[-1]
    assert (model, tok, task, problems, max_new) == ("POLICY", "tok", state.task, ["p"], 12)
    assert kw == {"n": 16, "temperature": 0.7, "top_p": 0.9, "k_values": (1, 4, 8, 16), "ref_model": None,
                  "micro_batch_size": 3, "max_rows": 16, "progress": False, "policy_is_reference": False}
    assert did["entered"] == ["phase eval"]  # no reference without KL: none is entered
    assert metrics == {"eval/digit/acc": 0.5, "eval/digit/acc_stderr": 0.1, "eval/digit/len_mean": 7.0,
                       "eval/digit/truncated_frac": 0.25, "eval/digit/no_answer_frac": 0.125,
                       "eval/digit/acc_lenient": 0.75, "eval/digit/pass@1": 0.4, "eval/digit/maj@4_lenient": 0.3,
                       "eval/digit/kl_k1": 0.01, "eval/digit/kl_k3": 0.02}
    assert did["written"] == [("eval", "step-000000", {**summary, "step": 0}), ("samples", "eval-step-000000", ["row"])]
    assert did["logged"] == [{**metrics, "step": 0}] and warned == [(state, summary)]

    # the KL drift: asked for, or by default when a reference exists or the policy is a LoRA adapter
    for eval_kl, ref_model, lora_rank, measured in ((True, None, 0, True), (None, "R", 0, True),
                                                    (None, None, 1, True), (None, None, 0, False),
                                                    (False, "R", 4, False)):
        state, did = _eval_state(eval_kl=eval_kl, ref_model=ref_model, lora_rank=lora_rank)
        ev.run_eval(state)
        assert did["entered"] == ["phase eval"] + ["reference"] * measured, (eval_kl, ref_model, lora_rank)
        assert calls[-1][1]["ref_model"] == ("REF" if measured else None)

    # k up to eval_samples, inclusive; rows of at least 16; the settings passed on
    for eval_samples, batch_size, ks, rows in ((4, 32, (1, 4), 32), (64, 17, (1, 4, 8, 16, 32, 64), 17),
                                               (0, 8, (), 16), (31, 8, (1, 4, 8, 16), 16)):
        state, did = _eval_state(eval_samples=eval_samples, batch_size=batch_size)
        state.show_progress, state.policy_is_reference = True, True
        ev.run_eval(state)
        kw = calls[-1][1]
        assert (kw["k_values"], kw["max_rows"], kw["n"]) == (ks, rows, eval_samples)
        assert kw["progress"] is True and kw["policy_is_reference"] is True

    # later evals: named by step (or final), not logged here; only the main process writes files
    warned.clear()
    state, did = _eval_state(step=5)
    del summary["kl_drift"]
    assert "eval/digit/kl_k1" not in ev.run_eval(state)
    assert [w[:2] for w in did["written"]] == [("eval", "step-000005"), ("samples", "eval-step-000005")]
    assert did["written"][0][2]["step"] == 5 and did["logged"] == [] and warned == []
    state, did = _eval_state(step=0)
    ev.run_eval(state, final=True)
    assert [w[:2] for w in did["written"]] == [("eval", "final"), ("samples", "eval-final")] and did["logged"] == []
    state, did = _eval_state(step=5, main=False)
    ev.run_eval(state, final=True)
    assert did["written"] == []
    state, did = _eval_state(problems=())
    assert ev.run_eval(state) == {} and did["entered"] == [] and len(calls) == 13


def test_evaluate_counts_one_sample_a_problem_and_measures_the_drift_on_the_samples(monkeypatch, capsys):
    """n = 1 is a sampled eval (pass@1); the drift is measured on the sampled rows when there are
    some; no drift without a reference, even at step 0; the unanswered share over the problems;
    the bar counts greedy + sampled + KL rows and is cleared when done."""
    import mathrl.evaluate as ev

    task = get_task("arithmetic-1shot")
    problems = task.load("test", limit=4)
    drift = []
    greedy = ["no idea", f"#### {problems[1].gold}", "#### 7777", "#### 7777"]
    monkeypatch.setattr(ev, "hf_generate", _canned({0: greedy, 1: [f"#### {p.gold}" for p in problems], 2: ["x"] * 8}))
    monkeypatch.setattr(ev, "kl_drift", lambda model, ref, batch, t, mb: drift.append(batch.completions) or {"k": 1})
    summary = ev.evaluate(torch.nn.Module(), None, task, problems, 8, n=1, policy_is_reference=True)[0]
    assert summary["pass@1"] == 1.0 and summary["accuracy"] == 0.25 and summary["no_answer_frac"] == 0.25
    assert "kl_drift" not in summary
    with monkeypatch.context() as one:
        one.setattr(ev, "hf_generate", _canned({0: ["no idea"]}))
        assert ev.evaluate(torch.nn.Module(), None, task, problems[:1], 8)[0]["no_answer_frac"] == 1.0
    summary = ev.evaluate(torch.nn.Module(), None, task, problems, 8, n=2, ref_model=torch.nn.Module(),
                          progress=True)[0]
    assert summary["kl_drift"] == {"k": 1} and drift == [["x"] * 8]  # the sampled rows, not the greedy ones
    err = capsys.readouterr().err
    assert "| 0/12 [" in err and "sample/s" in err and not err.endswith("\n")  # 4 greedy + 8 sampled; left clean
    ev.evaluate(torch.nn.Module(), None, task, problems, 8, ref_model=torch.nn.Module(), progress=True)
    assert "| 0/8 [" in capsys.readouterr().err  # 4 greedy + 4 sampled for the drift
