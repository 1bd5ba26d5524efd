"""Gold self-consistency on the real datasets: every gold answer equals itself after extraction
and normalisation, equals a rewritten form of itself, and differs from a perturbed version.

Data: $MATHRL_DATA_DIR or <repo>/../shared/data (gsm8k/test.jsonl, math500/test.jsonl); the
tests skip when the files are absent. The full tables take ~2 s, so they run by default.
"""

import json
import os
import re
from pathlib import Path

import pytest

from conftest import REPO
from mathrl.verify import compare, grade
from mathrl.verify.modes import _as_text, parse_checked
from mathrl.verify.normalize import normalize
from mathrl.verify.tree import STRUCTURES



def _data_file(*parts: str) -> Path:
    for root in filter(None, [os.environ.get("MATHRL_DATA_DIR"), str(REPO.parent / "shared" / "data")]):
        for candidate in (Path(root).joinpath(*parts), Path(root) / parts[-1]):
            if candidate.is_file():
                return candidate
    pytest.skip(f"{'/'.join(parts)} not found (set MATHRL_DATA_DIR)")


def _rows(*parts: str) -> list[dict]:
    with open(_data_file(*parts), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def perturb(answer: str) -> str:
    """A different answer: the first digit run plus one (zero padding kept), else `+1`.

    The first run, not the last: `52_8` -> `53_8` changes the answer, `52_9` (the base) would not.
    """
    m = re.search(r"\d+", answer)
    if m is None:
        return answer + "+1"
    run = m.group(0)
    return answer[: m.start()] + str(int(run) + 1).zfill(len(run)) + answer[m.end():]


def test_gsm8k_golds():
    rows = _rows("gsm8k", "test.jsonl")
    assert len(rows) == 1319
    for row in rows:
        solution = row["answer"]
        gold = solution.rsplit("####", 1)[1].strip()
        for extractor, mode in (("gsm8k", "numeric"), ("auto", "math")):
            g = grade(solution, gold, extractor=extractor, mode=mode)
            assert g.reason == "equal", (extractor, mode, gold, g)
        wrong = str(int(gold.replace(",", "")) + 1)
        assert grade(solution.rsplit("####", 1)[0] + "#### " + wrong, gold, mode="numeric").reason == "not_equal"


def test_math500_golds():
    rows = _rows("math500", "test.jsonl")
    assert len(rows) == 500
    for row in rows:
        gold = row["answer"]
        g = grade(f"Thus the answer is $\\boxed{{{gold}}}$.", gold)
        assert g.reason == "equal", (gold, g)
        assert compare(perturb(gold), gold) == "not_equal", (gold, perturb(gold))


def test_math500_golds_parse_and_survive_a_rewrite():
    # Stronger than self-equality (which the string tier decides): every gold must parse, and
    # each scalar gold must equal 3(gold)/3, which forces the exact / probe / SymPy tiers.
    rows = _rows("math500", "test.jsonl")
    rewritten = 0
    for row in rows:
        norm = normalize(row["answer"])
        if _as_text(norm) is not None:
            continue
        tree = parse_checked(norm.rstrip("%"))
        assert not isinstance(tree, str), (row["answer"], tree)
        if tree[0] not in STRUCTURES:
            assert compare(f"\\frac{{3\\left({norm}\\right)}}{{3}}", row["answer"]) == "equal", norm
            rewritten += 1
    assert rewritten > 400
