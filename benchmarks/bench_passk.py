"""DeepSeekMath Fig. 7 (§5.2.2): does RL boost maj@K but not pass@K? Before vs after, paired.

Takes the run directories that benchmarks/bench_reasoning.py wrote (DIR/runs/seed-N, each
with its final/ model) and samples n answers per held-out problem from the model before RL
(the runs' initial model) and from every run's final model, on the same problems the runs
evaluated. For k in --k it reports pass@k (unbiased, from n) and maj@k (first k samples, votes
pooled by the verifier's equivalence), graded leniently (the task's lenient extractor) and
strictly, and per seed the paired difference after - before with a 95% bootstrap CI over
problems. The paper samples 64 answers at temperature 0.7; here the temperature defaults to
the runs' training and evaluation temperature (1.0), and --temperature 0.7 gives the paper's.

    python benchmarks/bench_passk.py --runs results/reasoning --n 64 --limit 25

Writes DIR/passk/{before,seed-N}.json (+ .samples.jsonl), DIR/passk/summary.json and
DIR/passk/pass_maj_vs_k.png. A model whose JSON exists is not sampled again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, default=Path("results/reasoning"), help="bench_reasoning.py output")
    ap.add_argument("--n", type=int, default=64, help="samples per problem")
    ap.add_argument("--k", default="1,4,16,64", help="comma-separated k <= n")
    ap.add_argument("--limit", type=int, default=25, help="the first N of the runs' held-out problems")
    ap.add_argument("--temperature", type=float, default=None, help="default: the runs' temperature")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--suite", type=Path, default=None,
                    help="instead: a compare suite's output folder; each run of --algo is paired with its own "
                         "step-0 evaluation (a 'before' sample per seed), from the samples it kept")
    ap.add_argument("--algo", default="grpo", help="with --suite: the algorithm whose runs are read")
    args = ap.parse_args()
    if args.suite is not None:
        return from_suite(args)
    import torch

    torch.set_num_threads(args.threads)
    ks = tuple(int(k) for k in args.k.split(","))
    out = args.runs / "passk"
    # a run's samples, once written, are reused: its final/ model is not committed
    run_dirs = sorted(p for p in (args.runs / "runs").glob("seed-*")
                      if (p / "final").is_dir() or (out / f"{p.name}.json").is_file())
    if not run_dirs:
        raise SystemExit(f"no finished run with a final/ model under {args.runs / 'runs'}")
    cfg = json.loads((run_dirs[0] / "config.json").read_text())
    cfg = cfg.get("config", cfg)
    out.mkdir(parents=True, exist_ok=True)
    temperature = args.temperature if args.temperature is not None else cfg["temperature"]
    models = {"before": cfg["model"], **{d.name: str(d / "final") for d in run_dirs}}
    results = {name: sample(name, path, cfg, args, ks, temperature, out) for name, path in models.items()}
    before = results.pop("before")  # one model before RL: every seed shares its sample
    summary = compare({name: (before, after) for name, after in results.items()}, ks, args.n, temperature, True)
    for row in summary["per_seed"]:
        print(row["seed"], "  ".join(f"{m}@{k}: {d['before']:.2f}->{d['after']:.2f} "
                                     f"[{d['ci95'][0]:+.2f},{d['ci95'][1]:+.2f}]"
                                     for m in ("pass", "maj") for k, d in row[m].items()))
    report(summary, out)


def report(summary: dict, out: Path) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(summary, out / "pass_maj_vs_k.png")
    for key, g in summary["gain_over_seeds"].items():
        print(f"{key}: gain {g['mean']:+.3f}, 95% CI over seeds and problems [{g['ci95'][0]:+.3f}, "
              f"{g['ci95'][1]:+.3f}], Holm p {g['p_holm']:.3g}")
    print(f"wrote {out / 'summary.json'} and {out / 'pass_maj_vs_k.png'}")


def from_suite(args) -> None:
    """Fig. 7 from a suite's runs: each run's step-0 and final evaluation samples, per seed."""
    from mathrl.results import RunDir
    from mathrl.tasks import get_task

    pairs, cfg = {}, None
    for d in sorted((args.suite / "runs").glob(f"{args.algo}-*")):
        run = RunDir(d)
        cfg = run.read_config()
        mode = get_task(cfg["task"], tasks_dir=cfg.get("tasks_dir")).mode
        before, after = (run.read_samples(f"eval-{name}") for name in ("step-000000", "final"))
        ids = sorted({r["id"] for r in before} & {r["id"] for r in after})  # the same problems, same order
        by_id = lambda rows: {r["id"]: r for r in rows}  # noqa: E731
        pairs[d.name] = tuple({"mode": mode, "rows": [by_id(rows)[i] for i in ids]} for rows in (before, after))
    if not pairs:
        raise SystemExit(f"no {args.algo} runs under {args.suite / 'runs'}")
    n = len(next(iter(pairs.values()))[0]["rows"][0]["samples_correct_lenient"])
    ks = tuple(k for k in (int(k) for k in args.k.split(",")) if k <= n)
    out = args.suite / "fig7"
    out.mkdir(parents=True, exist_ok=True)
    report(compare(pairs, ks, n, cfg["temperature"], False), out)


def sample(name: str, model_path: str, cfg: dict, args, ks, temperature: float, out: Path) -> dict:
    """n samples per problem from one model, or the file a previous call wrote."""
    path = out / f"{name}.json"
    if path.is_file():
        result = json.loads(path.read_text())
        if "rows" not in result:  # the committed form keeps the rows beside it
            lines = path.with_suffix(".samples.jsonl").read_text().splitlines()
            result["rows"] = [json.loads(line) for line in lines if line.strip()]
        return result
    import torch

    from mathrl.evaluate import evaluate
    from mathrl.models import load_model
    from mathrl.tasks import get_task

    task = get_task(cfg["task"], tasks_dir=cfg.get("tasks_dir"), task_config=cfg.get("task_config") or None)
    problems = task.load(cfg["eval_split"], limit=min(args.limit, cfg["eval_limit"]), seed=0)  # the runs' eval set
    torch.manual_seed(cfg["seed"])
    model, tokenizer = load_model(model_path, seed=cfg["seed"])
    summary, rows = evaluate(model, tokenizer, task, problems, cfg["max_new_tokens"] or task.max_new_tokens,
                             n=args.n, temperature=temperature, k_values=ks, progress=True)
    result = {"model": model_path, "mode": task.mode, "summary": summary, "rows": rows}
    path.write_text(json.dumps(result))
    return result


def per_problem(result: dict, k: int, kind: str, lenient: bool = True) -> list[float]:
    """pass@k or maj@k of every problem, from its n samples."""
    from mathrl.metrics import maj_at_k, pass_at_k
    from mathrl.verify import equivalent

    suffix = "_lenient" if lenient else ""
    out = []
    for row in result["rows"]:
        correct = row[f"samples_correct{suffix}"]
        if kind == "pass":
            out.append(pass_at_k(len(correct), sum(correct), k))
        else:
            out.append(maj_at_k(row[f"samples_extracted{suffix}"], correct, k,
                                equivalent=lambda a, b: equivalent(a, b, mode=result["mode"])))
    return out


def compare(pairs: dict[str, tuple[dict, dict]], ks: tuple[int, ...], n: int, temperature: float,
            shared_before: bool) -> dict:
    """pairs: seed -> (before, after) results on the same problems. Per seed, the paired gain
    with a bootstrap over problems; over seeds, the interval over seeds and problems that every
    mathrl report quotes (stats.seeds_problems_interval), so it carries the noise of both."""
    import numpy as np

    from mathrl.stats import METHOD, crossed_bootstrap, holm, seeds_problems_interval

    per_seed, gains = [], {(m, k): [] for m in ("pass", "maj") for k in ks}
    for name, (before, after) in pairs.items():
        row = {"seed": name, "pass": {}, "maj": {}}
        for m in ("pass", "maj"):
            for k in ks:
                b, a = per_problem(before, k, m), per_problem(after, k, m)
                diffs = [x - y for x, y in zip(a, b)]  # the same problems, in the same order
                est = crossed_bootstrap(np.array([diffs]))
                row[m][str(k)] = {"before": sum(b) / len(b), "after": sum(a) / len(a), "ci95": [est.lo, est.hi]}
                gains[(m, k)].append(diffs)
        per_seed.append(row)
    over = {}
    for (m, k), rows in gains.items():
        est = seeds_problems_interval(np.array(rows))
        over[f"{m}@{k}"] = {"mean": est.mean, "ci95": [est.lo, est.hi], "p": est.p}
    for g, adjusted in zip(over.values(), holm([g["p"] for g in over.values()])):
        g["p_holm"] = adjusted  # every k of pass@k and maj@k is one claim of the figure
    first = next(iter(pairs.values()))
    return {"n": n, "problems": len(first[0]["rows"]), "temperature": temperature, "grade": "lenient",
            "shared_before": shared_before, "method": METHOD,
            "before": {f"{m}@{k}": float(np.mean([sum(per_problem(b, k, m)) / len(b["rows"])
                                                  for b, _ in pairs.values()]))
                       for m in ("pass", "maj") for k in ks},
            "per_seed": per_seed, "gain_over_seeds": over}


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ks = sorted(int(k) for k in summary["per_seed"][0]["pass"])
    for m, style in (("pass", "-"), ("maj", "--")):
        ax.plot(ks, [summary["before"][f"{m}@{k}"] for k in ks], style, color="grey", marker="o",
                label=f"before RL: {m}@k")
        after = [[row[m][str(k)]["after"] for row in summary["per_seed"]] for k in ks]
        ax.plot(ks, [sum(a) / len(a) for a in after], style, color="C0", marker="o",
                label=f"after GRPO: {m}@k (mean of {len(summary['per_seed'])} seeds)")
        for i in range(len(summary["per_seed"])):
            ax.plot(ks, [a[i] for a in after], style, color="C0", alpha=0.25, lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set(xlabel="k (samples per problem)", ylabel="fraction of problems (lenient grade)", ylim=(-0.02, 1.02),
           title=f"pass@k and maj@k before and after RL (n={summary['n']}, T={summary['temperature']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.savefig(path, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
