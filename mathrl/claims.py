"""The claims a report makes, each with an interval a reviewer accepts (DESIGN.md rule 19).

Two kinds of claim: each algorithm's gain over its own start (its step-0 evaluation, per seed),
and each difference between two algorithms. Where every run kept its evaluation samples, a claim
is made on the (seed, problem) matrix of per-problem pass@1 (stats.seeds_problems_interval; paired:
the same seeds and problems on both sides). Otherwise it falls back to the run-level
metric over seeds (a Student-t interval) and says so. Every p-value is Holm-adjusted over the
whole family of the report's claims, and only an adjusted p < alpha orders two arms; the
family-wise interval (Bonferroni, conf 1 - alpha/m) is the one to quote beside such a verdict.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mathrl import stats
from mathrl.results import RunDir

START = "step-000000"  # the evaluation before the first update: a run's own "before" sample
UNRESOLVED = "not resolved at this power"
T_METHOD = "95% Student-t interval over seeds of the run-level metric (no per-problem samples); Holm-adjusted"


# ---------------------------------------------------------------------------- per-problem data
def problem_scores(run_path: str, eval_name: str) -> dict[str, float] | None:
    """{problem id: lenient pass@1 from its samples} of one evaluation (`final`, `step-000000`),
    or None when the run kept no samples for it (a greedy-only eval scores 0/1 per problem)."""
    run = RunDir(run_path)
    try:
        rows = run.read_samples(f"eval-{eval_name}")
    except FileNotFoundError:
        return None
    out = {}
    for r in rows:
        flags = r.get("samples_correct_lenient") or r.get("samples_correct")
        if flags:
            out[str(r["id"])] = sum(map(bool, flags)) / len(flags)
        else:
            out[str(r["id"])] = float(bool(r.get("correct_lenient", r.get("correct"))))
    return out or None


def _matrix(pairs: list[tuple[dict, dict]]) -> np.ndarray | None:
    """(seeds, problems) matrix of first - second over the problems every pair shares."""
    if not pairs or any(a is None or b is None for a, b in pairs):
        return None
    ids = sorted(set.intersection(*(set(a) & set(b) for a, b in pairs)))
    if len(ids) < 2:
        return None
    return np.array([[a[i] - b[i] for i in ids] for a, b in pairs])


# ---------------------------------------------------------------------------- the family
def claims(groups: list[dict], metric: str | None, alpha: float = 0.05, delta: float = 0.02,
           half_width: float = 0.03) -> dict[str, Any]:
    """Every claim over `groups` (report.group_runs), Holm-adjusted, with a power row each:
    seeds to resolve `delta` at 80% power (at the Bonferroni level alpha/m, Holm's strictest
    step) and seeds for a 95% half-width <= `half_width`."""
    cache: dict[tuple[str, str], dict | None] = {}

    def scores(run: dict, name: str) -> dict | None:
        key = (run["path"], name)
        if key not in cache:
            cache[key] = problem_scores(run["path"], name)
        return cache[key]

    raw = []
    for g in groups:  # gains over each run's own start
        runs = sorted(g["runs"], key=lambda r: r["seed"])
        raw.append(("gain", g["label"], "start", [(scores(r, "final"), scores(r, START)) for r in runs]))
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            by_seed = {r["seed"]: r for r in b["runs"]}
            shared = sorted(r["seed"] for r in a["runs"] if r["seed"] in by_seed)
            mine = {r["seed"]: r for r in a["runs"]}
            raw.append(("difference", a["label"], b["label"],
                        [(scores(mine[s], "final"), scores(by_seed[s], "final")) for s in shared]))
    rows, matrices = [], []
    for kind, first, second, data in raw:
        x = _matrix(data)
        if x is None and metric is None:
            continue
        if x is None:  # seed-level fallback: the report's metric per run
            level = _seed_level(kind, first, second, groups, metric)
            if level is None or len(level) < 2:
                continue
            est = stats.t_interval(level)
            rows.append(_row(kind, first, second, len(level), None, est, T_METHOD))
            matrices.append(None)
            continue
        est = stats.seeds_problems_interval(x)
        row = _row(kind, first, second, x.shape[0], x.shape[1], est, "seeds x problems")
        row["p_improvement"] = _improvement(data)
        rows.append(row)
        matrices.append(x)
    m = len(rows)
    for row, adj in zip(rows, stats.holm([r["p"] for r in rows])):
        row["p_holm"] = adj
        row["verdict"] = _verdict(row, adj < alpha)
    for row, x in zip(rows, matrices):  # family-wise interval and power: need the matrix
        if x is None:
            continue
        fw = stats.seeds_problems_interval(x, conf=1 - alpha / m)
        row["fw_lo"], row["fw_hi"] = fw.lo, fw.hi
        if x.shape[0] < 2:
            continue
        var = stats.variance_components(x)
        row["power"] = {"sd_seed": math.sqrt(var.seed), "sd_problem": math.sqrt(var.problem),
                        "sd_residual": math.sqrt(var.residual), "se_now": var.se(x.shape[0]),
                        "se_floor": var.se(10**9), "delta": delta, "alpha": alpha / m,
                        "seeds_for_delta": stats.seeds_needed(var, delta, alpha=alpha / m),
                        "half_width": half_width,
                        "seeds_for_half_width": stats.seeds_for_half_width(var, half_width)}
    method = stats.METHOD if all(x is not None for x in matrices) else (
        stats.METHOD + "; rows marked (t) fall back to: " + T_METHOD)
    return {"metric": "per-problem lenient pass@1" if any(x is not None for x in matrices) else metric,
            "method": method, "alpha": alpha, "family": m, "rows": rows, "levels": _levels(groups, scores)}


def _levels(groups: list[dict], scores) -> list[dict[str, Any]]:
    """Each group's final pass@1 with the same interval over seeds and problems as the claims
    (a description, not a claim: outside the Holm family)."""
    out = []
    for g in groups:
        finals = [scores(r, "final") for r in g["runs"]]
        x = _matrix([(f, dict.fromkeys(f, 0.0) if f else None) for f in finals])  # minus 0: the level
        if x is not None:
            est = stats.seeds_problems_interval(x)
            out.append({"label": g["label"], "n": x.shape[0], "problems": x.shape[1], "mean": est.mean,
                        "lo": est.lo, "hi": est.hi})
    return out


def _row(kind: str, first: str, second: str, n_seeds: int, n_problems: int | None, est: stats.Estimate,
         method: str) -> dict[str, Any]:
    return {"kind": kind, "first": first, "second": second, "n": n_seeds, "problems": n_problems,
            "mean": est.mean, "lo": est.lo, "hi": est.hi, "p": est.p, "method": method}


def _verdict(row: dict, resolved: bool) -> str:
    if not resolved:
        return UNRESOLVED
    if row["kind"] == "gain":
        return f"{row['first']} > its start" if row["mean"] > 0 else f"{row['first']} < its start"
    return f"{row['first']} > {row['second']}" if row["mean"] > 0 else f"{row['second']} > {row['first']}"


def _improvement(data: list[tuple[dict, dict]]) -> float:
    """P(a run of the first arm scores above a run of the second), over their mean pass@1."""
    firsts = [sum(a.values()) / len(a) for a, _ in data]
    seconds = [sum(b.values()) / len(b) for _, b in data]
    return stats.prob_improvement(firsts, seconds)


def _seed_level(kind: str, first: str, second: str, groups: list[dict], metric: str) -> list[float] | None:
    if kind == "gain":
        return None  # a run-level start metric is not kept apart from the eval rows
    a = next(g for g in groups if g["label"] == first)
    b = {r["seed"]: r for g in groups if g["label"] == second for r in g["runs"]}
    diffs = [r[metric] - b[r["seed"]][metric] for r in a["runs"]
             if r["seed"] in b and r[metric] is not None and b[r["seed"]][metric] is not None]
    return diffs


# ---------------------------------------------------------------------------- rendering
def markdown(result: dict[str, Any]) -> list[str]:
    """The report's "Claims" and "Power" sections."""
    rows = result["rows"]
    if not rows:
        return []
    fw = f"family-wise CI ({1 - result['alpha'] / result['family']:.2%})"
    head = ["claim", "seeds x problems", "mean", "95% CI", fw, "p", "p (Holm)", "P(A > B)", "verdict"]
    body = []
    for r in rows:
        claim = f"{r['first']} − its start" if r["kind"] == "gain" else f"{r['first']} − {r['second']}"
        fw_text = f"[{r['fw_lo']:+.3f}, {r['fw_hi']:+.3f}]" if "fw_lo" in r else "—"
        body.append([claim + (" (t)" if r["problems"] is None else ""),
                     f"{r['n']} x {r['problems'] or '—'}", f"{r['mean']:+.3f}",
                     f"[{r['lo']:+.3f}, {r['hi']:+.3f}]", fw_text, _p(r["p"]), _p(r["p_holm"]),
                     f"{r['p_improvement']:.2f}" if r.get("p_improvement") is not None else "—", r["verdict"]])
    levels = result.get("levels") or []
    lines = ["## Claims", "", f"Metric: {result['metric']}. Intervals: {result['method']}. An order is "
             f"claimed only where the Holm-adjusted p < {result['alpha']:g} over all {result['family']} claims; "
             f"otherwise \"{UNRESOLVED}\".", "", md_table(head, body), ""]
    if levels:
        lines += ["Each group's final pass@1 with the same interval over seeds and problems (a level, not a claim):",
                  "", md_table(["group", "seeds x problems", "pass@1", "95% CI"],
                               [[v["label"], f"{v['n']} x {v['problems']}", f"{v['mean']:.3f}",
                                 f"[{v['lo']:.3f}, {v['hi']:.3f}]"] for v in levels]), ""]
    powered = [r for r in rows if "power" in r]
    if powered:
        p0 = powered[0]["power"]
        lines += ["## Power", "",
                  f"From these runs as a pilot: the variance of each claim split into seed, problem and "
                  f"residual terms (two-way random effects, method of moments), then the seeds needed to "
                  f"resolve a difference of {p0['delta']:g} with 80% power at alpha {p0['alpha']:.2g} "
                  f"(Bonferroni: Holm's strictest step), and for a 95% half-width <= {p0['half_width']:g}. "
                  "\"out of reach\": the problem term alone is too wide, more problems are needed, not seeds.", "",
                  md_table(["claim", "sd seed", "sd problem", "SE now", "SE with unlimited seeds",
                          f"seeds for {p0['delta']:g}", f"seeds for ±{p0['half_width']:g}"],
                         [[f"{r['first']} − {'its start' if r['kind'] == 'gain' else r['second']}",
                           f"{r['power']['sd_seed']:.4f}", f"{r['power']['sd_problem']:.4f}",
                           f"{r['power']['se_now']:.4f}", f"{r['power']['se_floor']:.4f}",
                           _seeds(r["power"]["seeds_for_delta"]), _seeds(r["power"]["seeds_for_half_width"])]
                          for r in powered]), ""]
    return lines


def _p(p: float) -> str:
    return "—" if p != p else ("<1e-4" if p < 1e-4 else f"{p:.4f}" if p < 0.01 else f"{p:.3f}")


def _seeds(n: int | None) -> str:
    return "out of reach" if n is None else str(n)


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in [header, *rows]]
    lines.insert(1, "|" + "|".join("---" for _ in header) + "|")
    return "\n".join(lines)
