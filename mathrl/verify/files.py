"""Grade a JSONL file: the library side of `mathrl verify --input F.jsonl`.

Each input line holds `gold` and either `completion` (the extractor is applied) or `pred`
(already an answer). Each output line is the input object plus `equal`, `extracted`,
`reason` and `ms`, in input order.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from mathrl.verify.extract import EXTRACTORS
from mathrl.verify.grade import compare, grade
from mathrl.verify.modes import MODES

PROGRESS_MIN_LINES = 1000  # show a progress bar from this many lines on


def _read(path: Path) -> list[dict]:
    rows = []
    with open(path, "rb") as f:  # decoded line by line, so an error can name its line
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid UTF-8 (byte {raw[e.start]:#04x} at column "
                                 f"{e.start + 1})") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict) or "gold" not in row:
                raise ValueError(f"{path}:{lineno}: expected an object with a 'gold' field")
            if ("completion" in row) == ("pred" in row):
                raise ValueError(f"{path}:{lineno}: needs exactly one of 'completion' or 'pred'")
            text = row.get("completion", row.get("pred"))
            if not isinstance(text, str) or not isinstance(row["gold"], (str, int, float)):
                raise ValueError(f"{path}:{lineno}: 'gold' and the answer must be strings or numbers")
            rows.append(row)
    return rows


def _verify_row(row: dict, extractor: str, mode: str) -> dict:
    start = time.perf_counter()
    gold = str(row["gold"])
    if "completion" in row:
        g = grade(row["completion"], gold, extractor=extractor, mode=mode)
        equal, extracted, reason = g.correct, g.extracted, g.reason
    else:
        extracted = row["pred"]
        reason = compare(extracted, gold, mode=mode)
        equal = reason == "equal"
    ms = (time.perf_counter() - start) * 1000
    return {**row, "equal": equal, "extracted": extracted, "reason": reason, "ms": round(ms, 3)}


def verify_jsonl(input_path, output_path=None, extractor: str = "auto", mode: str = "math") -> dict:
    """Grade every line; write the graded lines to output_path (or return them under "rows").

    Returns a summary: n, equal, accuracy, reasons (counts), seconds, per_second.
    A malformed line raises ValueError naming the file and line number.
    """
    from tqdm import tqdm

    if extractor not in EXTRACTORS:
        raise ValueError(f"unknown extractor {extractor!r}; choose from {sorted(EXTRACTORS)}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {sorted(MODES)}")
    rows = _read(Path(input_path))
    start = time.perf_counter()
    graded = [_verify_row(row, extractor, mode)
              for row in tqdm(rows, desc="verify", unit="line", disable=len(rows) < PROGRESS_MIN_LINES)]
    seconds = time.perf_counter() - start
    equal = sum(r["equal"] for r in graded)
    summary = {"n": len(graded), "equal": equal, "accuracy": equal / len(graded) if graded else 0.0,
               "reasons": dict(Counter(r["reason"] for r in graded)), "seconds": round(seconds, 4),
               "per_second": round(len(graded) / seconds, 1) if seconds > 0 else None}
    if output_path is None:
        return {**summary, "rows": graded}
    with open(output_path, "w", encoding="utf-8") as f:
        for row in graded:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {**summary, "output": str(output_path)}
