"""Run directories -> report.md, summary.json and PNG plots (DESIGN.md: "a small renderer").

Runs are grouped by (algo, task, model) from config.json, so that only seeds of the same
experiment are pooled; a group's number is the mean over its seeds with a 95% Student-t
interval (stats.t_interval); the claims between groups are in claims.py. Every run is also
listed on its own. A value a run lacks is shown as "—" and left out of its group's mean (the
table then says how many runs it pools).

Inputs read (see results.py): config.json keys algo, task, model, seed; metrics.jsonl keys
step, eval/<task>/acc, eval/<task>/kl_k3, flops/cumulative, time/cumulative_s, reward/mean,
rollout/len_mean, kl/mean; eval/final.json keys task, accuracy, accuracy_stderr, pass@K,
maj@K, kl_drift.k3_token.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from mathrl import claims
from mathrl.claims import md_table
from mathrl.report_plots import write_plots
from mathrl.stats import t_interval
from mathrl.results import RunDir, config_change_lines, to_json

DASH = "—"
_AT_K = re.compile(r"(pass|maj)@(\d+)$")


# ---------------------------------------------------------------------------- one run
def _eval_tasks(rows: list[dict]) -> list[str]:
    """Task names of the `eval/<task>/acc` keys in metrics rows (a task name may hold '/')."""
    keys = {k for r in rows for k in r}
    return sorted(k[5:-4] for k in keys if k.startswith("eval/") and k.endswith("/acc"))


def _last(rows: list[dict], key: str) -> Any:
    for r in reversed(rows):
        if r.get(key) is not None:
            return r[key]
    return None


def load_run(path: str | Path) -> dict[str, Any]:
    """Everything the report shows about one run, plus its metrics rows for the plots."""
    run = RunDir(path)
    config = run.read_config() if run.config_path.is_file() else {}
    rows = run.read_metrics()
    final = run.read_evals().get("final")

    # The eval task decides which eval/<task>/* keys are "the" accuracy: the final eval's task,
    # else the training task when it is evaluated, else the first one evaluated.
    tasks = _eval_tasks(rows)
    train_task = str(config.get("task", "?"))
    eval_task = (final or {}).get("task") or (train_task if train_task in tasks else None)
    eval_task = eval_task or (tasks[0] if tasks else train_task)

    accs = [r[f"eval/{eval_task}/acc"] for r in rows if r.get(f"eval/{eval_task}/acc") is not None]
    final_acc = (final or {}).get("accuracy")
    if final_acc is None and accs:
        final_acc = accs[-1]
    candidates = accs + ([final_acc] if final_acc is not None else [])
    lenient = (final or {}).get("accuracy_lenient")
    if lenient is None:
        lenient = _last(rows, f"eval/{eval_task}/acc_lenient")
    kl = ((final or {}).get("kl_drift") or {}).get("k3_token")
    if kl is None:
        kl = _last(rows, f"eval/{eval_task}/kl_k3")

    at_k: dict[str, dict[int, float]] = {"pass": {}, "maj": {}}
    for key, value in (final or {}).items():
        m = _AT_K.match(key)
        if m and value is not None:
            at_k[m.group(1)][int(m.group(2))] = float(value)

    return {
        "name": run.path.name,
        "path": str(run.path),
        "algo": str(config.get("algo", "?")),
        "task": train_task,
        "model": str(config.get("model", "?")),
        "seed": config.get("seed"),
        "eval_task": eval_task,
        "final_acc": final_acc,
        "final_acc_stderr": (final or {}).get("accuracy_stderr"),
        "final_acc_lenient": lenient,
        # pass@1 from n samples: a far less noisy estimate of accuracy than one greedy answer
        "pass1": (final or {}).get("pass@1"),
        "pass1_lenient": (final or {}).get("pass@1_lenient"),
        "best_acc": max(candidates) if candidates else None,
        "pass_at": at_k["pass"],
        "maj_at": at_k["maj"],
        "kl_drift": kl,
        "flops": _last(rows, "flops/cumulative"),
        "wall_s": _last(rows, "time/cumulative_s"),
        "steps": _last(rows, "step"),
        "has_final_eval": final is not None,
        "config_changes": config_change_lines(config),  # --resume --allow-config-change
        "rows": rows,
    }


# ---------------------------------------------------------------------------- groups
def _stat(values: list[float | None]) -> dict[str, Any]:
    """Mean and 95% CI half-width over the runs that have the value (None when none do)."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return {"mean": None, "ci95": None, "n": 0}
    est = t_interval(xs)
    return {"mean": est.mean, "ci95": None if math.isnan(est.hi) else est.hi - est.mean, "n": len(xs)}


def group_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pool runs by (algo, task, model), in order of first appearance."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    several_models = len({r["model"] for r in runs}) > 1
    several_tasks = len({r["task"] for r in runs}) > 1
    for r in runs:
        groups.setdefault((r["algo"], r["task"], r["model"]), []).append(r)
    out = []
    for (algo, task, model), members in groups.items():
        ks = {kind: sorted({k for r in members for k in r[f"{kind}_at"]})
              for kind in ("pass", "maj")}
        out.append({
            "algo": algo, "task": task, "model": model,
            # a curve is named by what differs between the groups: the algorithm, and the task or
            # model only where several are compared (a warm start's model is a long run path)
            "label": algo + (f" / {Path(task).stem}" if several_tasks else "")
                     + (f" / {short_model(model)}" if several_models else ""),
            "seeds": [r["seed"] for r in members],
            "runs": members,
            **{m: _stat([r[m] for r in members])
               for m in ("final_acc", "final_acc_lenient", "pass1", "pass1_lenient", "best_acc", "kl_drift",
                         "flops", "wall_s")},
            "pass_at": {k: _stat([r["pass_at"].get(k) for r in members]) for k in ks["pass"]},
            "maj_at": {k: _stat([r["maj_at"].get(k) for r in members]) for k in ks["maj"]},
        })  # fmt: skip
    return out


def short_model(model: str) -> str:
    """`runs/init-sft-arithmetic-s0/final` -> `init-sft-arithmetic-s0`; hub ids and names stay."""
    path = Path(model)
    return path.parent.name if path.name == "final" else (path.name if "/" in model and path.exists() else model)


def _table_k(runs: list[dict], kind: str) -> int | None:
    """The k shown in the table: the largest k every run reporting any {kind}@k has."""
    sets = [set(r[f"{kind}_at"]) for r in runs if r[f"{kind}_at"]]
    if not sets:
        return None
    common = set.intersection(*sets)
    return max(common) if common else max(set.union(*sets))


# ---------------------------------------------------------------------------- formatting
def _fmt_num(x: float | None, kind: str) -> str:
    if x is None:
        return DASH
    if kind == "flops":
        return f"{x:.2e}".replace("e+", "e")
    if kind == "seconds":
        div, unit, fmt = _time_unit(x)
        return f"{x / div:{fmt}} {unit}"
    if kind == "kl":
        return f"{x:.4f}"
    return f"{x:.3f}"


def _time_unit(seconds: float) -> tuple[float, str, str]:
    if seconds < 60:
        return 1.0, "s", ".0f"
    return (60.0, "min", ".1f") if seconds < 3600 else (3600.0, "h", ".2f")


def _fmt_stat(s: dict[str, Any], kind: str, n_runs: int) -> str:
    text = _fmt_num(s["mean"], kind)
    if s["mean"] is None:
        return text
    if s["ci95"] is not None and kind == "seconds":  # one unit for mean and interval
        div, unit, fmt = _time_unit(s["mean"])
        text = f"{s['mean'] / div:{fmt}} ± {s['ci95'] / div:{fmt}} {unit}"
    elif s["ci95"] is not None:
        text += f" ± {_fmt_num(s['ci95'], kind)}"
    if s["n"] < n_runs:
        text += f" (n={s['n']})"
    return text


def render_markdown(
    title: str, groups: list[dict], runs: list[dict], plots: list[tuple[str, str]],
    warm: list[dict] | None = None, pairs: dict[str, Any] | None = None,
) -> str:
    """The report text: a table per group, a table per run, the plots, what was missing."""
    kp, km = _table_k(runs, "pass"), _table_k(runs, "maj")
    pk, mk = (f"pass@{kp}" if kp else "pass@k"), (f"maj@{km}" if km else "maj@k")
    head = ["algorithm", "task", "model", "seeds", "final acc", "lenient acc", "best acc", pk, mk,
            "KL drift", "FLOPs", "wall time"]  # fmt: skip
    group_rows = []
    for g in groups:
        n = len(g["runs"])
        group_rows.append([
            g["algo"], g["task"], short_model(g["model"]), str(n),
            _fmt_stat(g["final_acc"], "acc", n), _fmt_stat(g["final_acc_lenient"], "acc", n),
            _fmt_stat(g["best_acc"], "acc", n),
            _fmt_stat(g["pass_at"][kp], "acc", n) if kp in g["pass_at"] else DASH,
            _fmt_stat(g["maj_at"][km], "acc", n) if km in g["maj_at"] else DASH,
            _fmt_stat(g["kl_drift"], "kl", n), _fmt_stat(g["flops"], "flops", n),
            _fmt_stat(g["wall_s"], "seconds", n),
        ])  # fmt: skip
    run_rows = []
    for r in runs:
        acc = _fmt_num(r["final_acc"], "acc")
        if r["final_acc"] is not None and r["final_acc_stderr"] is not None:
            acc += f" ± {r['final_acc_stderr']:.3f} (se)"
        run_rows.append([
            r["name"], r["algo"], r["task"], short_model(r["model"]), str(r["seed"]), acc,
            _fmt_num(r["final_acc_lenient"], "acc"), _fmt_num(r["best_acc"], "acc"),
            _fmt_num(r["pass_at"].get(kp), "acc"),
            _fmt_num(r["maj_at"].get(km), "acc"), _fmt_num(r["kl_drift"], "kl"),
            _fmt_num(r["flops"], "flops"), _fmt_num(r["wall_s"], "seconds"),
        ])  # fmt: skip

    parts = [
        f"# {title}", "",
        f"{len(runs)} runs in {len(groups)} groups, grouped by (algorithm, task, model).", "",
        "## Results", "",
        md_table(head, group_rows), "",
        "Each cell is the mean over seeds ± the half-width of its 95% confidence interval "
        "(Student t, n−1 degrees of freedom); a single seed shows no interval, and (n=…) marks "
        "a mean over fewer runs than the group has. Accuracy and pass/maj@k are from the final "
        "evaluation (eval/final.json), else the last in-training evaluation, graded by the task's "
        "grader (the reward's) and, as lenient acc, by its format-insensitive lenient grader; best acc is the "
        "best evaluation seen. KL drift is the k3 estimate of KL(policy ‖ reference) per "
        "token at evaluation. FLOPs and wall time are cumulative training cost "
        "(mathrl/compute.py: 6N per trained token, 2N per generated or scored token); wall "
        "time includes in-training evaluation, not start-up or checkpoint writing.", "",
        "## Runs", "",
        md_table(["run", "algorithm", "task", "model", "seed", "final acc", "lenient acc", "best acc", pk, mk,
                   "KL drift", "FLOPs", "wall time"], run_rows), "",
        "Here ± is the standard error of the final accuracy over the evaluation problems.", "",
    ]  # fmt: skip
    if warm:
        parts += ["## Warm start", "",
                  "Every run above starts from this model; it is not one of the compared algorithms. "
                  "Its final evaluation is the dotted grey line in the accuracy plots.", "",
                  md_table(["run", "algorithm", "steps", "final acc", "lenient acc", "pass@1"],
                            [[w["name"], w["algo"], str(w["steps"]), _fmt_num(w["final_acc"], "acc"),
                              _fmt_num(w["final_acc_lenient"], "acc"), _fmt_num(w["pass1"], "acc")] for w in warm]),
                  ""]
    if pairs:
        parts += claims.markdown(pairs)
    if plots:
        parts += ["## Plots", "",
                  "In the curves, thin lines are single seeds, the thick line is their mean at the "
                  "steps all seeds share, and the band is its 95% CI over seeds.", ""]
        for fname, caption in plots:
            parts += [f"![{caption}]({fname})", "", f"*{caption}*", ""]
    missing = [f"- `{r['name']}`: " + ", ".join(why) for r in runs if (why := _missing(r))]
    if missing:
        parts += ["## Missing data", "", *missing, ""]
    changed = [f"- `{r['name']}` {line}" for r in runs + (warm or []) for line in r["config_changes"]]
    if changed:
        parts += ["## Settings changed on resume", "", "Resumed with `--allow-config-change`; each change is in "
                  "force from the step named (config.json, `config_changes`).", "", *changed, ""]
    return "\n".join(parts)


def _missing(run: dict) -> list[str]:
    why = []
    if run["algo"] == "?" or run["task"] == "?":
        why.append("no algo/task in config.json")
    if not run["rows"]:
        why.append("no metrics.jsonl rows")
    if not run["has_final_eval"]:
        why.append("no eval/final.json")
    if run["final_acc"] is None:
        why.append(f"no accuracy for task {run['eval_task']!r}")
    return why


# ---------------------------------------------------------------------------- entry point
def pairwise(groups: list[dict], delta: float = 0.02) -> dict[str, Any]:
    """Every claim of the report (claims.py): each group's gain over its start and each pair's
    difference. Without per-problem samples the claims use the least noisy metric every run has:
    lenient pass@1 from n samples, else the lenient greedy accuracy, else the greedy accuracy."""
    runs = [r for g in groups for r in g["runs"]]
    metric = next((m for m in ("pass1_lenient", "final_acc_lenient", "final_acc")
                   if runs and all(r[m] is not None for r in runs)), None)
    return claims.claims(groups, metric, delta=delta)


def write_report(run_dirs: list[Path], output_dir: Path, title: str | None = None,
                 warm_start: list[Path] | tuple = ()) -> Path:
    """Write report.md, summary.json and the PNG plots for `run_dirs` into `output_dir`;
    return the path of report.md. `warm_start` runs (a suite's init_from stage) are shown
    apart: a table and a reference line, not a compared algorithm."""
    if not run_dirs:
        raise ValueError("write_report needs at least one run directory")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    warm_paths = {Path(p).resolve() for p in warm_start}
    runs = [load_run(p) for p in run_dirs if Path(p).resolve() not in warm_paths]
    warm = [load_run(p) for p in run_dirs if Path(p).resolve() in warm_paths]
    groups = group_runs(runs) if runs else []
    pairs = pairwise(groups)
    title = title or "mathrl report"
    plots = write_plots(groups, output_dir, warm)

    def rel(p: str) -> str:  # summary.json is committed: no absolute paths of this machine
        return os.path.relpath(p, output_dir)

    summary = {
        "title": title,
        "groups": [{**{k: v for k, v in g.items() if k != "runs"},
                    "runs": [r["name"] for r in g["runs"]]} for g in groups],
        "runs": [{**{k: v for k, v in r.items() if k != "rows"}, "path": rel(r["path"])}
                 for r in runs],
        "warm_start": [{**{k: v for k, v in w.items() if k != "rows"}, "path": rel(w["path"])} for w in warm],
        "pairwise": pairs,
        "plots": [f for f, _ in plots],
    }  # fmt: skip
    (output_dir / "summary.json").write_text(to_json(summary, indent=2) + "\n", encoding="utf-8")
    report = output_dir / "report.md"
    report.write_text(render_markdown(title, groups, runs, plots, warm, pairs), encoding="utf-8")
    return report

