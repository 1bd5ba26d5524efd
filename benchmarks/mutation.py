"""Mutation score of the modules a wrong number would come from (issue 27; `make mutation`).

mutmut (configured in pyproject.toml's [tool.mutmut]) applies one-line bugs to each function of
the listed modules, one mutant at a time, and runs the fast tests that call that function
(fastest first, stopping at the first failure). A mutant no test fails "survived". Survivors that
cannot change any output are listed with a one-line reason in results/mutation/equivalent.yaml
(matched by function and mutated line, since mutmut's numbers move when a function changes);
they count as killed, the others against the score:

    score = (killed + timeout + equivalent) / mutants tested (all of them, unless a run was stopped)

An "error" (mutmut's exit status 255: the mutant's test run could not start) counts against it.

Writes results/mutation/summary.json (per module: counts, score, seconds, every survivor's diff
line) and the score table between the markers of results/mutation/README.md.

    python benchmarks/mutation.py                               # every module, from scratch
    python benchmarks/mutation.py --module mathrl/metrics.py --keep   # one module, reuse mutants/
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "mutation"
BEGIN, END = "<!-- scores: written by benchmarks/mutation.py -->", "<!-- /scores -->"


def configured_modules() -> list[str]:
    """[tool.mutmut] only_mutate, read by mutmut itself (its TOML reader works on Python 3.10 too)."""
    from mutmut.configuration import config  # reads ./pyproject.toml

    os.chdir(ROOT)
    return list(config().only_mutate)


def mutmut(*args: str, log=None) -> subprocess.CompletedProcess:
    """The mutmut CLI of this interpreter's environment, from the repository root, one thread."""
    exe = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(exe), *args], cwd=ROOT, env=env, text=True,
                          stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT if log else subprocess.PIPE)


def mutated_line(name: str) -> str:
    """The line a mutant puts in place of the original (its diff's first added line)."""
    diff = mutmut("show", name).stdout
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return added[0] if added else ""


def function_of(name: str) -> str:
    """mathrl.reward.x_shaped_rewards__mutmut_3 -> mathrl.reward.shaped_rewards (methods: Class.method)."""
    module, _, mangled = name.rpartition(".")
    mangled = mangled.rsplit("__mutmut_", 1)[0]
    if mangled.startswith("x\u01c1"):  # mutmut's xǁClassǁmethod
        return f"{module}.{'.'.join(part for part in mangled[2:].split(chr(0x1c1)) if part)}"
    return f"{module}.{mangled.removeprefix('x_')}"


def _in_order(name: str) -> tuple[str, int]:
    """mutmut's names sorted by function, then by number (x_f__mutmut_2 before x_f__mutmut_10)."""
    stem, _, number = name.rpartition("_")
    return stem, int(number)


def module_result(module: str, seconds: float | None, equivalent: list[dict]) -> dict:
    from mutmut.stats import status_by_exit_code

    meta = json.loads((ROOT / "mutants" / f"{module}.meta").read_text())
    counts: dict[str, int] = {}
    survivors, marked = [], []
    for name, code in sorted(meta["exit_code_by_key"].items(), key=lambda item: _in_order(item[0])):
        # mutmut 3.8 records a test run that ended without a pytest status (test ids not found
        # after a warm-up collection; a module failing at import) as 255 and counts it a timeout:
        # here an error, not caught (results/mutation/README.md)
        status = "error" if code == 255 else status_by_exit_code[code]
        if status == "survived":
            entry = {"mutant": name, "function": function_of(name), "line": mutated_line(name)}
            reason = next((e["reason"] for e in equivalent
                           if e["function"] == entry["function"] and e["mutant"] == entry["line"]), None)
            if reason is not None:
                status = "equivalent"
                marked.append({**entry, "reason": reason})
            else:
                survivors.append(entry)
        counts[status] = counts.get(status, 0) + 1
    total = sum(counts.values())
    tested = total - counts.get("not checked", 0)  # < total only when a run was stopped midway
    caught = counts.get("killed", 0) + counts.get("timeout", 0) + counts.get("equivalent", 0)
    return {"mutants": total, "counts": counts, "score": caught / tested if tested else None,
            "commit": _git("rev-parse", "--short", "HEAD"),  # modules may be scored at different commits
            "seconds": None if seconds is None else round(seconds, 1),
            "mutant_test_seconds": round(sum(v for v in meta["durations_by_key"].values() if v), 1),
            "equivalent": marked, "survived": survivors}


def scores_table(modules: dict[str, dict]) -> str:
    rows = ["| module | mutants | killed | timeout | equivalent | survived | no tests | error | not checked | score "
            "| run s | commit |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for module, r in modules.items():
        c = r["counts"]
        score = "-" if r["score"] is None else f"{100 * r['score']:.1f}%"
        seconds = "stopped" if r["seconds"] is None else f"{r['seconds']:.0f}"
        rows.append(f"| `{module}` | {r['mutants']} | {c.get('killed', 0)} | {c.get('timeout', 0)} | "
                    f"{c.get('equivalent', 0)} | {c.get('survived', 0)} | {c.get('no tests', 0)} | "
                    f"{c.get('error', 0)} | {c.get('not checked', 0)} | {score} | {seconds} | {r.get('commit', '-')} |")
    lines = ["\n".join(rows), ""]
    for module, r in modules.items():
        for e in r["equivalent"]:
            lines.append(f"- equivalent, `{e['function']}`: `{e['line']}`: {e['reason']}")
        for s in r["survived"]:
            lines.append(f"- **survived**, `{s['function']}`: `{s['line']}`")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", action="append", metavar="PATH",
                        help="a module of [tool.mutmut] only_mutate (repeatable; default: all of them)")
    parser.add_argument("--keep", action="store_true",
                        help="reuse mutants/ from an earlier run (default: start from scratch)")
    parser.add_argument("--rescore", action="store_true",
                        help="run nothing: score the modules of summary.json again from mutants/ "
                             "(after a change to equivalent.yaml)")
    parser.add_argument("--output", type=Path, default=OUT, help="results folder (default: %(default)s)")
    args = parser.parse_args(argv)
    if shutil.which(str(Path(sys.executable).with_name("mutmut"))) is None:
        parser.error("mutmut is not installed here: pip install -e '.[mutation]' (or: make mutation)")
    known = configured_modules()
    modules = args.module or known
    unknown = [m for m in modules if m not in known]
    if unknown:
        parser.error(f"not in [tool.mutmut] only_mutate: {', '.join(unknown)}")
    equivalent = yaml.safe_load((args.output / "equivalent.yaml").read_text()) or []
    summary_path = args.output / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {"modules": {}}
    if args.rescore:  # the modules given, else those of summary.json; a module run midway: seconds unknown
        for module in args.module or list(summary["modules"]):
            old = summary["modules"].get(module, {"seconds": None})
            new = module_result(module, old["seconds"], equivalent)
            if new["score"] is None and old.get("score") is not None:  # mutmut reset its cache since
                print(f"{module}: mutants/ holds no results any more; summary.json keeps the run's")
                continue
            summary["modules"][module] = new
        write(summary, known, args.output, keep_stamp=True)
        return 0
    if not args.keep:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    (ROOT / "mutants").mkdir(exist_ok=True)
    for module in modules:
        glob = module.removesuffix(".py").replace("/", ".") + ".*"
        print(f"mutmut run {glob}", flush=True)
        start = time.perf_counter()
        with open(ROOT / "mutants" / f"run-{glob.rstrip('.*')}.log", "w") as log:
            done = mutmut("run", "--max-children", "1", glob, log=log)
        if done.returncode != 0:
            print(f"mutmut failed on {module} (exit {done.returncode}); see mutants/run-*.log", file=sys.stderr)
            return 1
        result = module_result(module, time.perf_counter() - start, equivalent)
        summary["modules"][module] = result
        print(f"  {result['mutants']} mutants, score {100 * result['score']:.1f}%, {result['seconds']:.0f} s",
              flush=True)
        write(summary, known, args.output)  # after each module: a long run stopped midway keeps what it measured
    return 0


def write(summary: dict, known: list[str], folder: Path, keep_stamp: bool = False) -> None:
    summary["modules"] = {m: summary["modules"][m] for m in known if m in summary["modules"]}
    if not keep_stamp:  # a rescore keeps the commit and date of the run it scores
        summary.update({"tool": f"mutmut {_version('mutmut')}", "python": sys.version.split()[0],
                        "commit": _git("rev-parse", "--short", "HEAD"),
                        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")})
    (folder / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    readme = folder / "README.md"
    head, _, rest = readme.read_text().partition(BEGIN)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{BEGIN}\n{scores_table(summary['modules'])}{END}{tail}")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
