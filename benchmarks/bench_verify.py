"""Benchmark mathrl.verify against math-verify on the same inputs, in one process.

    python benchmarks/bench_verify.py [--data ../shared/data] [--repeats 3] [--out results/verify]

Inputs (built from real data, the ground truth is known by construction):
  gsm8k        every GSM8K test solution as written (ends in `#### N`: correct) and the same
               solution with N replaced by N+1 (wrong): 2 x 1319 completions.
  math_rewrite every MATH-500 gold vs an equivalent rewrite of it (expected equal).
  math_perturb every MATH-500 gold vs a perturbed version (first digit run + 1; expected not equal).
  math_other   every MATH-500 gold vs the next problem's gold (expected: not equal unless the
               two strings are the same answer; only agreement between the tools is reported).

Each tool grades every pair; throughput is pairs per second of the best of --repeats runs
(caches cleared between runs, the mathrl worker started before timing). math-verify is used
as its README shows: verify(parse(gold), parse(prediction)), gold wrapped in `$...$`.
Writes <out>/bench.json (numbers + every disagreement); README.md is written by hand from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mathrl.verify import compare, grade  # noqa: E402
from mathrl.verify.compare import SYMBOLIC_CACHE  # noqa: E402
from mathrl.verify.modes import parse_checked  # noqa: E402
from mathrl.verify.worker import POOL  # noqa: E402


# ---- inputs -----------------------------------------------------------------------------------

def load(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def gsm8k_pairs(rows: list[dict]) -> list[dict]:
    pairs = []
    for row in rows:
        body, gold = row["answer"].rsplit("####", 1)
        gold = gold.strip().replace(",", "")
        pairs.append({"completion": row["answer"], "gold": gold, "expected": True})
        pairs.append({"completion": f"{body}#### {int(gold) + 1}", "gold": gold, "expected": False})
    return pairs


def perturb(answer: str) -> str:
    """First digit run + 1 (zero padding kept); `+1` when there is no digit."""
    m = re.search(r"\d+", answer)
    if m is None:
        return answer + "+1"
    run = m.group(0)
    return answer[: m.start()] + str(int(run) + 1).zfill(len(run)) + answer[m.end():]


def _terms(expr: str) -> list[str] | None:
    """Top-level signed terms of a sum (`x^2 - 2x + 1` -> [x^2, -2x, +1]), None if not a sum."""
    if any(bad in expr for bad in ("=", ",", "\\pm", "\\cup", "\\begin", "\\{")):
        return None
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        depth += ch in "({[" and 1 or 0
        depth -= ch in ")}]" and 1 or 0
        if depth == 0 and ch in "+-" and i > 0 and expr[i - 1] not in "^{(" and expr[:i].strip():
            terms.append(expr[start:i].strip())
            start = i
    terms.append(expr[start:].strip())
    return terms if len(terms) > 1 and all(terms) else None


def _fraction(m: re.Match) -> str:
    a, b = int(m.group(2)), int(m.group(3))
    sign = m.group(1)
    d = b
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return f"{sign}{a / b:.10g}" if d == 1 else f"{sign}{a}/{b}"


# Equivalent spellings a model might write; the first family that applies is used.
REWRITES = [
    ("fraction->decimal or a/b", lambda g: re.sub(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$", _fraction, g)),
    ("1/sqrt(n) form", lambda g: re.sub(r"^\\frac\{\\sqrt\{(\d+)\}\}\{\1\}$", r"\\frac{1}{\\sqrt{\1}}", g)),
    ("k sqrt(n) -> sqrt(k^2 n)", lambda g: re.sub(r"^(\d+)\s*\\sqrt\{(\d+)\}$",
                                                  lambda m: f"\\sqrt{{{int(m.group(1))**2 * int(m.group(2))}}}", g)),
    ("k sqrt n (short) -> sqrt", lambda g: re.sub(r"^(\d+)\s*\\sqrt(\d)$",
                                                  lambda m: f"\\sqrt{{{int(m.group(1))**2 * int(m.group(2))}}}", g)),
    ("decimal -> fraction", lambda g: re.sub(r"^(\d*)\.(\d+)$", lambda m: "\\frac{%d}{%d}" % (
        int(m.group(1) + m.group(2)), 10 ** len(m.group(2))), g)),
    ("n pi -> pi * n", lambda g: re.sub(r"^(\d+)\s*\\pi$", r"\\pi \\cdot \1", g)),
    ("equation -> right side", lambda g: re.sub(r"^[a-z]\s*=\s*([^a-zA-Z=]+)$", r"\1", g)),
    ("pm expanded", lambda g: (lambda m: m and f"{m.group(1)} + {m.group(2)}, {m.group(1)} - {m.group(2)}"
                               or g)(re.fullmatch(r"([^{}\\]*?)\s*\\pm\s*([^,=]*)", g))),
    ("base subscript dropped", lambda g: re.sub(r"^(\d+)_\{?\d+\}?$", r"\1", g)),
    ("dollar sign dropped", lambda g: re.sub(r"^\\\$(.+)$", r"\1", g)),
    ("units dropped", lambda g: re.sub(r"^(.+?)\s*\\(?:text|mbox)\{\s*[a-z ]+\}(?:\^\d)?$", r"\1", g)),
    ("sqrt -> power 1/2", lambda g: re.sub(r"^\\sqrt\{(\d+)\}$", r"\1^{1/2}", g)),
    ("degrees dropped", lambda g: re.sub(r"^(\d+)\^\\circ$", r"\1", g)),
    ("text unwrapped", lambda g: re.sub(r"^\\text\{\(?([A-Za-z ]+)\)?\}$", r"\1", g)),
    ("thousands separator", lambda g: f"{int(g):,}" if re.fullmatch(r"\d{4,}", g) else g),
    ("terms reversed", lambda g: (lambda t: t and " ".join(
        [t[-1].lstrip("+")] + [x if x[0] in "+-" else "+" + x for x in reversed(t[:-1])]) or g)(_terms(g))),
    ("pmatrix->bmatrix", lambda g: g.replace("pmatrix", "bmatrix")),
    ("union reordered", lambda g: " \\cup ".join(reversed(g.split("\\cup"))).strip() if "\\cup" in g else g),
    ("list reversed", lambda g: ", ".join(reversed([x.strip() for x in g.split(",")]))
        if re.fullmatch(r"[-\d\s,\\a-z{}]+", g) and "," in g and not re.search(r",\\?!?\s*\d{3}(?!\d)", g)
        and "\\{" not in g and "(" not in g else g),
    ("\\left( \\right)", lambda g: "\\left(" + g[1:-1] + "\\right)" if re.fullmatch(r"\([^()]*\)", g) else g),
    ("dfrac", lambda g: g.replace("\\frac", "\\dfrac")),
    ("integer as n.0", lambda g: g + ".0" if re.fullmatch(r"-?\d+", g) else g),
]


def rewrite(gold: str) -> tuple[str, str]:
    for name, fn in REWRITES:
        new = fn(gold)
        if new != gold:
            return name, new
    return "displaystyle", "\\displaystyle " + gold


def math_pairs(rows: list[dict]) -> dict[str, list[dict]]:
    golds = [r["answer"] for r in rows]
    out: dict[str, list[dict]] = {"math_rewrite": [], "math_perturb": [], "math_other": []}
    for i, gold in enumerate(golds):
        family, new = rewrite(gold)
        out["math_rewrite"].append({"pred": new, "gold": gold, "expected": True, "family": family})
        out["math_perturb"].append({"pred": perturb(gold), "gold": gold, "expected": False})
        other = golds[(i + 1) % len(golds)]
        out["math_other"].append({"pred": other, "gold": gold, "expected": True if other == gold else None})
    return out


# ---- the two checkers -------------------------------------------------------------------------

def mathrl_gsm8k(pair, extractor, mode):
    g = grade(pair["completion"], pair["gold"], extractor=extractor, mode=mode)
    return g.correct, g.reason


def mathrl_answer(pair):
    reason = compare(pair["pred"], pair["gold"])
    return reason == "equal", reason


def math_verify_fn():
    from math_verify import parse, verify

    def run(pair):
        prediction = pair.get("completion") or f"${pair['pred']}$"
        return bool(verify(parse(f"${pair['gold']}$"), parse(prediction))), ""
    return run


def clear_caches() -> None:
    parse_checked.cache_clear()
    SYMBOLIC_CACHE.data.clear()


def timed(fn, pairs, repeats: int) -> tuple[list, float]:
    best, verdicts = float("inf"), []
    for _ in range(repeats):
        clear_caches()
        start = time.perf_counter()
        verdicts = [fn(p) for p in pairs]
        best = min(best, time.perf_counter() - start)
    return verdicts, best


# ---- main -------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("MATHRL_DATA_DIR", REPO.parent / "shared" / "data")))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "results" / "verify")
    args = ap.parse_args()

    start = time.perf_counter()
    compare("10^{300}\\sqrt{2} + 1 - 10^{300}\\sqrt{2}", "1", timeout=60)  # start the worker
    worker_start_s = time.perf_counter() - start
    mv = math_verify_fn()
    datasets = {"gsm8k": gsm8k_pairs(load(args.data / "gsm8k" / "test.jsonl")),
                **math_pairs(load(args.data / "math500" / "test.jsonl"))}
    tools = {
        "gsm8k": {"mathrl (gsm8k, numeric)": lambda p: mathrl_gsm8k(p, "gsm8k", "numeric"),
                  "mathrl (auto, math)": lambda p: mathrl_gsm8k(p, "auto", "math"),
                  "math-verify": mv},
    }
    results = {}
    for name, pairs in datasets.items():
        row = {"pairs": len(pairs), "tools": {}}
        verdicts = {}
        for tool, fn in tools.get(name, {"mathrl": mathrl_answer, "math-verify": mv}).items():
            requests_before = POOL.stats()["requests"]
            v, seconds = timed(fn, pairs, args.repeats)
            verdicts[tool] = v
            known = [(ok, p["expected"]) for (ok, _), p in zip(v, pairs) if p["expected"] is not None]
            row["tools"][tool] = {
                "seconds": round(seconds, 4), "per_second": round(len(pairs) / seconds, 1),
                "accuracy_vs_truth": round(sum(ok == exp for ok, exp in known) / len(known), 4) if known else None,
                "worker_requests_per_run": (POOL.stats()["requests"] - requests_before) // args.repeats,
            }
        names = list(verdicts)
        ours, theirs = names[0], names[-1]
        row["speedup"] = round(row["tools"][ours]["per_second"] / row["tools"][theirs]["per_second"], 1)
        row["disagreements"] = [
            {**p, ours: verdicts[ours][i][0], "reason": verdicts[ours][i][1], theirs: verdicts[theirs][i][0]}
            for i, p in enumerate(pairs) if verdicts[ours][i][0] != verdicts[theirs][i][0]]
        for d in row["disagreements"]:
            if "completion" in d:  # keep the end of the long solution text: enough to explain
                d["completion_tail"] = d.pop("completion")[-160:]
        results[name] = row
        print(f"{name:13} n={len(pairs):5}  " + "  ".join(
            f"{t}: {r['per_second']:>9.1f}/s acc={r['accuracy_vs_truth']}" for t, r in row["tools"].items())
            + f"  speedup={row['speedup']}x  disagreements={len(row['disagreements'])}")

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
