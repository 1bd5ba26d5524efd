"""Benchmark mathrl.verify against math-verify on the same inputs, in one process.

    python benchmarks/bench_verify.py [--data ../shared/data] [--repeats 3] [--out results/verify] [--sets a,b]

Inputs (verify_pairs.py builds them; the right answer is known by construction): gsm8k,
math_rewrite, math_perturb, math_other (issue 3), math_raw, math_forms and tables (issue 13),
families (issue 25).

Each tool grades every pair. Runs are interleaved (mathrl, math-verify, mathrl, ...; caches
cleared before each) so that both see the same machine load, and throughput is pairs per second
of each tool's best run. The mathrl worker is started before timing. mathrl: `grade()` with its
defaults for raw text (`completion`), `compare()` for answers (`pred`). math-verify as its README
shows: verify(parse(gold), parse(prediction)), gold and answers wrapped in `$...$`, raw text as is
(a gold that is itself raw text, `gold_raw`, too).
Writes <out>/bench.json (numbers, per-family accuracy, every disagreement and every pair a tool
gets wrong); README.md is written by hand from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from mathrl.verify import compare, grade  # noqa: E402
from verify_pairs import (family_pairs, form_pairs, gsm8k_pairs, load, math_pairs, raw_pairs,  # noqa: E402
                          table_pairs)
from mathrl.verify.compare import SYMBOLIC_CACHE  # noqa: E402
from mathrl.verify.modes import parse_checked  # noqa: E402
from mathrl.verify.worker import POOL  # noqa: E402


# ---- the two checkers -------------------------------------------------------------------------

def mathrl_pair(pair, extractor="auto", mode="math"):
    if "completion" in pair:
        g = grade(pair["completion"], pair["gold"], extractor=extractor, mode=mode)
        return g.correct, g.reason
    reason = compare(pair["pred"], pair["gold"], mode=mode)
    return reason == "equal", reason


def math_verify_fn():
    from math_verify import parse, verify

    def run(pair):
        prediction = pair.get("completion") or f"${pair['pred']}$"
        gold = pair["gold"] if pair.get("gold_raw") else f"${pair['gold']}$"  # a whole solution as is
        return bool(verify(parse(gold), parse(prediction))), ""
    return run


def clear_caches() -> None:
    parse_checked.cache_clear()
    SYMBOLIC_CACHE.data.clear()


def interleaved(tools: dict, pairs: list[dict], repeats: int) -> tuple[dict, dict]:
    """Verdicts and best seconds per tool; the tools take turns within every repeat."""
    best = {name: float("inf") for name in tools}
    verdicts: dict[str, list] = {}
    for _ in range(repeats):
        for name, fn in tools.items():
            clear_caches()
            start = time.perf_counter()
            verdicts[name] = [fn(p) for p in pairs]
            best[name] = min(best[name], time.perf_counter() - start)
    return verdicts, best


def _accuracy(verdicts: list, pairs: list[dict], family: str | None = None) -> dict:
    known = [(ok, p["expected"]) for (ok, _), p in zip(verdicts, pairs)
             if p["expected"] is not None and (family is None or p.get("family") == family)]
    right = sum(ok == exp for ok, exp in known)
    return {"right": right, "known": len(known), "accuracy": round(right / len(known), 4) if known else None}


def _shown(pair: dict) -> dict:
    out = {k: v for k, v in pair.items() if k != "completion"}
    if "completion" in pair:  # keep the end of a long solution text: enough to explain
        out["completion_tail"] = pair["completion"][-200:]
    return out


def measure(name: str, pairs: list[dict], tools: dict, repeats: int) -> dict:
    requests_before = POOL.stats()["requests"]
    verdicts, seconds = interleaved(tools, pairs, repeats)
    row = {"pairs": len(pairs), "tools": {}, "worker_requests_per_run":
           (POOL.stats()["requests"] - requests_before) // repeats}
    for tool, v in verdicts.items():
        row["tools"][tool] = {"seconds": round(seconds[tool], 4), "per_second": round(len(pairs) / seconds[tool], 1),
                              **_accuracy(v, pairs)}
    names = list(verdicts)
    ours, theirs = names[0], names[-1]
    row["speedup"] = round(row["tools"][ours]["per_second"] / row["tools"][theirs]["per_second"], 1)
    families = sorted({p["family"] for p in pairs if "family" in p})
    if families:
        row["families"] = {f: {t: _accuracy(verdicts[t], pairs, f) for t in (ours, theirs)} for f in families}
    row["disagreements"] = [{**_shown(p), ours: verdicts[ours][i][0], "reason": verdicts[ours][i][1],
                             theirs: verdicts[theirs][i][0]}
                            for i, p in enumerate(pairs) if verdicts[ours][i][0] != verdicts[theirs][i][0]]
    row["wrong"] = {t: [{**_shown(p), "reason": verdicts[t][i][1]} for i, p in enumerate(pairs)
                        if p["expected"] is not None and verdicts[t][i][0] != p["expected"]] for t in (ours, theirs)}
    print(f"{name:13} n={len(pairs):5}  " + "  ".join(
        f"{t}: {r['per_second']:>9.1f}/s right={r['right']}/{r['known']}" for t, r in row["tools"].items())
        + f"  speedup={row['speedup']}x  disagreements={len(row['disagreements'])}", flush=True)
    return row


# ---- main -------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("MATHRL_DATA_DIR", REPO.parent / "shared" / "data")))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "results" / "verify")
    ap.add_argument("--sets", default="", help="comma-separated subset of the sets (default: all)")
    args = ap.parse_args()

    start = time.perf_counter()
    compare("10^{300}\\sqrt{2} + 1 - 10^{300}\\sqrt{2}", "1", timeout=60)  # start the worker
    worker_start_s = time.perf_counter() - start
    mv = math_verify_fn()
    math500 = load(args.data / "math500" / "test.jsonl")
    datasets = {"gsm8k": gsm8k_pairs(load(args.data / "gsm8k" / "test.jsonl")), **math_pairs(math500),
                "math_raw": raw_pairs(math500), "math_forms": form_pairs(math500), "tables": table_pairs(),
                "families": family_pairs()}
    chosen = [s for s in args.sets.split(",") if s] or list(datasets)
    tools = {"gsm8k": {"mathrl (gsm8k, numeric)": lambda p: mathrl_pair(p, "gsm8k", "numeric"),
                       "mathrl (auto, math)": mathrl_pair, "math-verify": mv}}
    results = {name: measure(name, datasets[name], tools.get(name, {"mathrl": mathrl_pair, "math-verify": mv}),
                             args.repeats) for name in chosen}

    import math_verify

    report = {
        "command": "python benchmarks/bench_verify.py " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
        "versions": {"math_verify": getattr(math_verify, "__version__", "0.9.0"),
                     "sympy": __import__("sympy").__version__},
        "repeats": args.repeats, "worker_start_s": round(worker_start_s, 3),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out / 'bench.json'}")


if __name__ == "__main__":
    main()
