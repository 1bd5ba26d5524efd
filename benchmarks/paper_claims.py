"""The DeepSeekMath claims (§5.2, Fig. 5 / Table 10) read off a compare report's summary.json:
for each claim, the report's Holm-corrected row and a verdict (results/deepseekmath-unified-v4).

- "A > B": reproduced when the Holm-adjusted p < alpha and the difference is positive,
  contradicted when it is resolved and negative, or when the 95% interval lies inside +-margin
  (no difference of the margin's size exists: equivalence, TOST-style); else not resolved.
- "A ≈ B": reproduced when the 95% interval lies inside +-margin (an equivalence test at the
  margin, TOST-style), contradicted when a difference is resolved, else not resolved.

    python benchmarks/paper_claims.py results/deepseekmath-unified-v4 --margin 0.03
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CLAIMS = [  # (claim, first, second, kind): first - second, or first's gain over its start
    ("RL improves on the SFT model: GRPO", "grpo", "start", ">"),
    ("RL improves on the SFT model: online RFT", "online_rft", "start", ">"),
    ("RL improves on the SFT model: offline RFT", "offline_rft", "start", ">"),
    ("RL improves on the SFT model more than more SFT does: GRPO > continued SFT", "grpo", "sft", ">"),
    ("GRPO > online RFT", "grpo", "online_rft", ">"),
    ("online RFT > offline RFT", "online_rft", "offline_rft", ">"),
    ("RFT ≈ SFT", "offline_rft", "sft", "≈"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--margin", type=float, default=0.03)
    args = ap.parse_args()
    summary = json.loads((args.folder / "summary.json").read_text())
    alpha = summary["pairwise"]["alpha"]
    rows = summary["pairwise"]["rows"]
    out = []
    for claim, first, second, kind in CLAIMS:
        row, sign = _find(rows, first, second)
        if row is None:
            out.append({"claim": claim, "verdict": "no data"})
            continue
        mean, lo, hi = (sign * row["mean"], *sorted((sign * row["lo"], sign * row["hi"])))
        resolved = row["p_holm"] < alpha
        equal = -args.margin < lo and hi < args.margin
        if kind == ">":
            verdict = (("reproduced" if mean > 0 else "contradicted") if resolved else
                       f"contradicted: equal within ±{args.margin:g}" if equal else "not resolved at this power")
        else:
            verdict = "contradicted" if resolved else "reproduced" if equal else "not resolved at this power"
        out.append({"claim": claim, "difference": f"{first} - {second}", "mean": mean, "ci95": [lo, hi],
                    "family_ci": sorted((sign * row.get("fw_lo", float("nan")), sign * row.get("fw_hi", float("nan")))),
                    "p": row["p"], "p_holm": row["p_holm"], "verdict": verdict})
    (args.folder / "paper_claims.json").write_text(json.dumps({"margin": args.margin, "alpha": alpha,
                                                               "claims": out}, indent=2) + "\n")
    for c in out:
        if "mean" in c:
            print(f"{c['claim']}: {c['mean']:+.3f} [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}], Holm p "
                  f"{c['p_holm']:.3g}: "
                  f"{c['verdict']}")


def _find(rows: list[dict], first: str, second: str) -> tuple[dict | None, int]:
    for r in rows:
        if second == "start" and r["kind"] == "gain" and r["first"] == first:
            return r, 1
        if r["kind"] == "difference" and (r["first"], r["second"]) == (first, second):
            return r, 1
        if r["kind"] == "difference" and (r["first"], r["second"]) == (second, first):
            return r, -1
    return None, 1


if __name__ == "__main__":
    main()
