"""Is a warm start converged? Its evaluations' lenient pass@1 over training, and the plateau
criterion of results/deepseekmath-unified-v4: the least-squares change of pass@1 over the
evaluations in the last `--last` fraction of its steps must be below `--gain` (0.01).

    python benchmarks/warm_start_plateau.py results/deepseekmath-unified-v4/runs/init-sft-arithmetic-add2-500-s0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--last", type=float, default=0.2, help="fraction of the steps the criterion looks at")
    ap.add_argument("--gain", type=float, default=0.01, help="largest fitted change that counts as a plateau")
    ap.add_argument("--output", type=Path, default=None, help="default: <run>/../../warm_start.json")
    args = ap.parse_args()
    evals = sorted((json.loads(p.read_text()) for p in (args.run / "eval").glob("*.json")), key=lambda e: e["step"])
    curve = {}
    for e in evals:  # the final eval stands for the last step; it supersedes a step eval at the same step
        curve[e["step"]] = e["pass@1_lenient"]
    steps = sorted(curve)
    start = steps[-1] * (1 - args.last)
    tail = [s for s in steps if s >= start]
    slope = float(np.polyfit(tail, [curve[s] for s in tail], 1)[0]) if len(tail) > 1 else float("nan")
    change = slope * (tail[-1] - tail[0])
    result = {"run": args.run.name, "curve": [{"step": s, "pass@1_lenient": curve[s]} for s in steps],
              "criterion": f"least-squares change of pass@1 over the evaluations at steps >= {start:g} "
                           f"(the last {args.last:.0%}) below {args.gain}",
              "tail_steps": tail, "fitted_change": change, "tail_min": min(curve[s] for s in tail),
              "tail_max": max(curve[s] for s in tail), "plateau": bool(change < args.gain)}
    out = args.output or args.run.parent.parent / "warm_start.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"fitted change over steps {tail[0]}-{tail[-1]}: {change:+.4f} (criterion < {args.gain}): "
          f"{'plateau' if result['plateau'] else 'still rising'}; pass@1 "
          f"{result['tail_min']:.3f}-{result['tail_max']:.3f}")


if __name__ == "__main__":
    main()
