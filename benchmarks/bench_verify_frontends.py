"""Should mathrl adopt a maintained LaTeX front end? Accuracy, safety and speed, measured.

    python benchmarks/bench_verify_frontends.py [--data ../shared/data] [--timeout 5] [--out results/verify]

Candidates: sympy's `parse_latex(..., backend="lark")` and `latex2sympy2_extended.latex2sympy`
(math-verify's front end). Each runs only in a child process (this file with --serve, under
RLIMIT_AS), killed when a request passes --timeout, as mathrl's own SymPy worker is.

A front end would replace mathrl's lexer + parser, so both sides get mathrl's normalisation
first and the front end parses the normalised strings; two parses are equal when SymPy says
so (`a == b`, else `simplify(a - b) == 0`). mathrl itself is `compare()`. Pairs: the extracted-
answer pairs of bench_verify (math_rewrite, math_perturb, math_forms, mathrl's tables), and the
adversarial inputs of tests/verify/test_adversarial.py (time to a verdict, and kills).
Writes <out>/frontends.json.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
FRONTENDS = ("sympy-lark", "latex2sympy2_extended")
MEMORY_LIMIT = 3 << 30


# ---- the child process ------------------------------------------------------------------------

def _parser(frontend: str):
    if frontend == "sympy-lark":
        from sympy.parsing.latex import parse_latex
        return lambda s: parse_latex(s, backend="lark")
    from latex2sympy2_extended import latex2sympy
    return latex2sympy


def _equal(a, b) -> bool:
    import sympy as sp
    if a == b:
        return True
    try:
        return sp.simplify(a - b) == 0
    except Exception:  # noqa: BLE001 - sets, relations, tuples: only == applies
        return False


def serve() -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, resource.RLIM_INFINITY))
    parsers = {name: _parser(name) for name in FRONTENDS}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        start = time.perf_counter()
        try:
            parse = parsers[req["frontend"]]
            a = parse(req["a"])
            reply = {"parsed": True, "equal": _equal(a, parse(req["b"])) if "b" in req else None}
        except Exception as e:  # noqa: BLE001 - a parse error is a verdict
            reply = {"parsed": False, "equal": False, "error": type(e).__name__}
        reply["ms"] = (time.perf_counter() - start) * 1000
        print(json.dumps(reply), flush=True)


# ---- the parent: a killable child ---------------------------------------------------------------

class Child:
    def __init__(self) -> None:
        self.proc, self.kills = None, 0
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.proc.stdout.readline()  # {"ready": true}: imports are not timed

    def ask(self, request: dict, timeout: float) -> dict:
        start = time.perf_counter()
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            if select.select([self.proc.stdout], [], [], timeout)[0]:
                line = self.proc.stdout.readline()
                if line:
                    return json.loads(line)
            outcome = "timeout" if self.proc.poll() is None else "crashed"
        except (BrokenPipeError, OSError):
            outcome = "crashed"
        ms = (time.perf_counter() - start) * 1000  # to the kill; the restart is not the input's cost
        self.proc.kill()
        self.proc.wait()
        self.kills += 1
        self.start()
        return {"parsed": False, "equal": False, "error": outcome, "ms": ms}


# ---- measurements -----------------------------------------------------------------------------

def accuracy(child: Child, pairs: list[dict], timeout: float) -> dict:
    from mathrl.verify import compare
    from mathrl.verify.normalize import normalize

    out = {}
    for name in ("mathrl", *FRONTENDS):
        right, unparsed, kills_before, ms, wrong = 0, 0, child.kills, [], []
        for p in pairs:
            if name == "mathrl":
                start = time.perf_counter()
                reason = compare(p["pred"], p["gold"])
                ms.append((time.perf_counter() - start) * 1000)
                equal, parsed = reason == "equal", reason != "unparsable"
            else:
                reply = child.ask({"frontend": name, "a": normalize(p["pred"]), "b": normalize(p["gold"])}, timeout)
                ms.append(reply["ms"])
                equal, parsed = bool(reply["equal"]), reply["parsed"]
            right += equal == p["expected"]
            unparsed += not parsed
            if equal != p["expected"] and len(wrong) < 40:
                wrong.append({"pred": p["pred"], "gold": p["gold"], "expected": p["expected"]})
        out[name] = {"right": right, "pairs": len(pairs), "accuracy": round(right / len(pairs), 4),
                     "unparsed": unparsed, "kills": child.kills - kills_before,
                     "median_ms": round(statistics.median(ms), 3), "mean_ms": round(statistics.fmean(ms), 3),
                     "wrong_examples": wrong}
        print(f"{name:22} right={right}/{len(pairs)} unparsed={unparsed} kills={out[name]['kills']} "
              f"median={out[name]['median_ms']:.3f} ms mean={out[name]['mean_ms']:.3f} ms", flush=True)
    return out


def safety(child: Child, timeout: float) -> dict:
    sys.path.insert(0, str(REPO / "tests" / "verify"))
    from test_adversarial import BOMBS  # noqa: E402 - the tests' hostile inputs

    out = {}
    for name in FRONTENDS:
        rows = {}
        for label, text in BOMBS.items():
            reply = child.ask({"frontend": name, "a": text}, timeout)
            rows[label] = {"seconds": round(reply["ms"] / 1000, 3),
                           "outcome": reply.get("error") or ("parsed" if reply["parsed"] else "error")}
        out[name] = rows
        killed = [k for k, r in rows.items() if r["outcome"] in ("timeout", "crashed")]
        print(f"{name:22} bombs={len(rows)} killed={len(killed)}: {', '.join(killed)}", flush=True)
    return out


def main() -> None:
    if "--serve" in sys.argv:
        return serve()
    from verify_pairs import form_pairs, load, math_pairs, table_pairs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("MATHRL_DATA_DIR", REPO.parent / "shared" / "data")))
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=REPO / "results" / "verify")
    args = ap.parse_args()
    math500 = load(args.data / "math500" / "test.jsonl")
    sets = math_pairs(math500)
    pairs = {"math_rewrite": sets["math_rewrite"], "math_perturb": sets["math_perturb"],
             # the delimiter families are plain golds once normalised: the rest of math_forms
             "math_forms": [p for p in form_pairs(math500) if p["family"] not in ("$...$", "\\(...\\)", "\\boxed{}")],
             "tables": [p for p in table_pairs() if "pred" in p]}
    child = Child()
    report = {"command": "python benchmarks/bench_verify_frontends.py " + " ".join(sys.argv[1:]),
              "timeout_s": args.timeout, "load_avg_1m": os.getloadavg()[0], "accuracy": {}}
    for name, ps in pairs.items():
        print(f"-- {name} ({len(ps)} pairs)", flush=True)
        report["accuracy"][name] = accuracy(child, ps, args.timeout)
    print("-- adversarial inputs", flush=True)
    report["safety"] = safety(child, args.timeout)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "frontends.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out / 'frontends.json'}")


if __name__ == "__main__":
    main()
