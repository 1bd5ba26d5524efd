"""The report over synthetic run directories (test fixtures built in tmp_path, not results)."""

import json

import pytest

from mathrl.report import group_runs, load_run, write_report
from mathrl.report_plots import seed_mean, series
from mathrl.results import RunDir

PLOTS = ["acc_vs_flops.png", "acc_vs_wall.png", "kl_vs_step.png", "reward_len_vs_step.png",
         "pass_maj_vs_k.png"]  # fmt: skip


def _fake_run(root, name, algo, seed, accs, final=None, model="tiny", task="gsm8k"):
    """A run of 4 steps; evals after steps 2 and 4 on rows of their own (no flops key)."""
    run = RunDir(root / name)
    run.write_config({"algo": algo, "task": task, "seed": seed, "model": model})
    for step in range(1, 5):
        run.append_metrics({
            "step": step, "reward/mean": 0.1 * step + 0.01 * seed, "rollout/len_mean": 100.0 + step,
            "kl/mean": 0.001 * step, "flops/cumulative": 1e12 * step,
            "time/cumulative_s": 30.0 * step,
        })  # fmt: skip
        if step % 2 == 0:
            run.append_metrics({"step": step, f"eval/{task}/acc": accs[step // 2 - 1],
                                f"eval/{task}/kl_k3": 0.002 * step, f"eval/{task}/len_mean": 99.0})
    if final is not None:
        run.write_eval("final", final)
    return run.path


def _final(acc, p4, m4):
    return {"task": "gsm8k", "accuracy": acc, "accuracy_stderr": 0.02, "n": 500, "pass@1": acc,
            "pass@4": p4, "maj@4": m4, "maj@1": acc,
            "kl_drift": {"k1_token": 0.01, "k3_token": 0.005, "k1_seq": 1.0, "k3_seq": 0.5},
            "len_mean": 120.0, "truncated_frac": 0.0, "no_answer_frac": 0.01}  # fmt: skip


@pytest.fixture
def runs(tmp_path):
    return [
        _fake_run(tmp_path, "grpo-s0", "grpo", 0, [0.40, 0.45], _final(0.5, 0.70, 0.55)),
        _fake_run(tmp_path, "grpo-s1", "grpo", 1, [0.42, 0.65], _final(0.6, 0.80, 0.60)),
        _fake_run(tmp_path, "grpo-s2", "grpo", 2, [0.41, 0.50], _final(0.7, 0.90, 0.65)),
        _fake_run(tmp_path, "ppo-s0", "ppo", 0, [0.30, 0.35]),  # no final eval
    ]


def _table(md: str, heading: str) -> list[list[str]]:
    """Rows (header included) of the first markdown table after `heading`."""
    lines = md.split(heading, 1)[1].splitlines()
    end = next((i for i, ln in enumerate(lines) if ln.startswith("|")), 0)
    rows = []
    for ln in lines[end:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return [rows[0], *rows[2:]]  # drop the |---| rule


def test_report_table_ci_and_plots(runs, tmp_path):
    out = tmp_path / "report"
    path = write_report(runs, out, title="Synthetic test report")
    md = path.read_text()
    assert path == out / "report.md" and md.startswith("# Synthetic test report")

    table = _table(md, "## Results")
    header, grpo, ppo = table
    assert header == ["algorithm", "task", "model", "seeds", "final acc", "lenient acc", "best acc", "pass@4",
                      "maj@4", "KL drift", "FLOPs", "wall time"]  # fmt: skip
    cell = dict(zip(header, grpo))
    assert [cell[c] for c in header[:4]] == ["grpo", "gsm8k", "tiny", "3"]
    # final acc 0.5/0.6/0.7: mean 0.6, stderr 0.1/sqrt(3) = 0.05774, t(2) = 4.303 -> 0.248
    assert cell["final acc"] == "0.600 ± 0.248"
    # best acc per seed: max(evals, final) = 0.5, 0.65, 0.7 -> mean 0.6167
    assert cell["best acc"].startswith("0.617 ± ")
    # pass@4 0.7/0.8/0.9 -> 0.8 ± 0.248; maj@4 0.55/0.6/0.65 -> 0.6 ± 0.124
    assert cell["pass@4"] == "0.800 ± 0.248" and cell["maj@4"] == "0.600 ± 0.124"
    assert cell["KL drift"] == "0.0050 ± 0.0000"
    assert cell["FLOPs"] == "4.00e12 ± 0.00e00" and cell["wall time"] == "2.0 ± 0.0 min"

    cell = dict(zip(header, ppo))
    # one seed: no interval; no final.json: last in-training eval and its KL, no pass/maj
    assert cell["seeds"] == "1" and cell["final acc"] == "0.350" and cell["best acc"] == "0.350"
    assert cell["pass@4"] == "—" and cell["maj@4"] == "—"
    assert cell["KL drift"] == "0.0080"
    assert "`ppo-s0`: no eval/final.json" in md

    per_run = _table(md, "## Runs")
    assert [r[0] for r in per_run[1:]] == ["grpo-s0", "grpo-s1", "grpo-s2", "ppo-s0"]
    assert per_run[1][5] == "0.500 ± 0.020 (se)"

    for name in PLOTS:
        png = out / name
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 5_000  # a real figure, not an empty canvas
        assert f"]({name})" in md

    summary = json.loads((out / "summary.json").read_text())
    g = summary["groups"][0]
    assert g["final_acc"]["mean"] == pytest.approx(0.6)
    assert g["final_acc"]["ci95"] == pytest.approx(4.3027 * 0.1 / 3**0.5, rel=1e-4)  # t_{0.975, 2} = 4.3027
    assert g["runs"] == ["grpo-s0", "grpo-s1", "grpo-s2"]
    assert summary["runs"][0]["path"] == "../grpo-s0"  # relative: the summary is committed
    assert summary["groups"][1]["final_acc"]["ci95"] is None  # one seed


def test_report_survives_empty_and_configless_runs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()  # no config, no metrics, no eval
    bare = RunDir(tmp_path / "bare")
    bare.write_config({"algo": "rloo", "task": "math500", "seed": 0, "model": "tiny"})
    path = write_report([empty, bare.path], tmp_path / "out")
    md = path.read_text()
    rows = _table(md, "## Results")[1:]
    assert rows[0][:3] == ["?", "?", "?"] and rows[1][:2] == ["rloo", "math500"]
    assert all(c == "—" for c in rows[1][4:])
    assert "## Plots" not in md and not list((tmp_path / "out").glob("*.png"))
    assert "`empty`: no algo/task in config.json, no metrics.jsonl rows" in md


def test_groups_keep_models_apart_and_pick_eval_task(tmp_path):
    a = _fake_run(tmp_path, "a", "grpo", 0, [0.1, 0.2], model="m1")
    b = _fake_run(tmp_path, "b", "grpo", 0, [0.3, 0.4], model="m2")
    groups = group_runs([load_run(a), load_run(b)])
    assert [g["model"] for g in groups] == ["m1", "m2"]  # not pooled as two "seeds"

    # training task not evaluated under its own name: fall back to the evaluated task
    c = _fake_run(tmp_path, "c", "grpo", 0, [0.3, 0.25], task="gsm8k_platinum")
    cfg = RunDir(c).read_config()
    RunDir(c).write_config({**cfg, "task": "gsm8k_train"})
    run = load_run(c)
    assert run["eval_task"] == "gsm8k_platinum" and run["final_acc"] == 0.25
    assert run["best_acc"] == 0.3 and run["flops"] == 4e12


def test_series_forward_fills_x_and_seed_mean_aligns_steps():
    rows = [{"step": 0, "eval/t/acc": 0.1},  # baseline eval before any compute was counted
            {"step": 1, "flops/cumulative": 10.0}, {"step": 1, "eval/t/acc": 0.5},
            {"step": 2, "flops/cumulative": 20.0, "eval/t/acc": None},
            {"step": 3, "flops/cumulative": 30.0}, {"step": 3, "eval/t/acc": 0.7}]  # fmt: skip
    assert series(rows, "eval/t/acc", "flops/cumulative") == [
        (0.0, 0.0, 0.1), (1.0, 10.0, 0.5), (3.0, 30.0, 0.7)]
    assert series(rows, "eval/t/acc") == [(0.0, 0.0, 0.1), (1.0, 1.0, 0.5), (3.0, 3.0, 0.7)]
    # step 2 exists only in the second seed: dropped, not averaged over one seed
    seed0 = [(1, 10, 0.2), (3, 30, 0.6)]
    seed1 = [(1, 12, 0.4), (2, 20, 0.9), (3, 32, 0.8)]
    xs, ys, hws = seed_mean([seed0, seed1])
    assert xs == [11, 31] and ys == pytest.approx([0.3, 0.7])
    assert hws == pytest.approx([12.706 * 0.1, 12.706 * 0.1], rel=1e-4)  # stderr of 2 values 0.2 apart: 0.1


def test_pairwise_differences_claim_an_order_only_when_the_ci_excludes_zero(tmp_path):
    warm = _fake_run(tmp_path, "init-sft-gsm8k-s0", "sft", 0, [0.2, 0.3], _final(0.3, 0.5, 0.3))
    start = str(warm / "final")
    runs = [_fake_run(tmp_path, f"{algo}-s{seed}", algo, seed, [0.3, acc], _final(acc, 0.9, acc), model=start)
            for algo, accs in (("grpo", (0.5, 0.6, 0.7)), ("sft", (0.3, 0.35, 0.45)), ("ppo", (0.6, 0.5, 0.7)))
            for seed, acc in enumerate(accs)]
    md = write_report([warm, *runs], tmp_path / "report", warm_start=[warm]).read_text()
    results = _table(md, "## Results")
    assert [row[0] for row in results[1:]] == ["grpo", "sft", "ppo"]  # the warm start is not compared
    assert "init-sft-gsm8k-s0" in _table(md, "## Warm start")[1][0]
    rows = {r[0]: r for r in _table(md, "## Claims")[1:]}
    # no per-problem samples: the seed-level fallback, marked (t).
    # grpo - sft per seed: 0.2, 0.25, 0.25 -> mean 0.2333, sd 0.02887, se 0.01667, t(2) 4.303 -> +-0.0717
    assert rows["grpo − sft (t)"][2:4] == ["+0.233", "[+0.162, +0.305]"]
    # p(t = 14.0, 2 df) = 0.0051; Holm over 3 claims: x3 = 0.015 < 0.05 -> ordered
    assert rows["grpo − sft (t)"][5:7] == ["0.0051", "0.015"] and rows["grpo − sft (t)"][8] == "grpo > sft"
    # grpo - ppo: -0.1, +0.1, 0.0 -> the interval holds 0: no order is claimed
    assert rows["grpo − ppo (t)"][8] == "not resolved at this power"
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["pairwise"]["metric"] == "final_acc" and summary["warm_start"][0]["algo"] == "sft"
    rows = summary["pairwise"]["rows"]
    assert all("p_holm" in r and "p" in r for r in rows) and len(rows) == 3
    assert "Student-t" in summary["pairwise"]["method"]
    legend_labels = [g["label"] for g in summary["groups"]]
    assert legend_labels == ["grpo", "sft", "ppo"]  # curves are named by algorithm, not by a run path
