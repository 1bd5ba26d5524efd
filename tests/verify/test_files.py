"""verify_jsonl: the file batch interface behind `mathrl verify --input`."""

import json

import pytest

from mathrl.verify import verify_jsonl

ROWS = [
    {"completion": "so 9 * 2 = 18\n#### 18", "gold": "18", "id": "a"},
    {"pred": "\\frac{1}{2}", "gold": "0.5"},
    {"pred": "3", "gold": 4},  # a numeric gold is read as its string
    {"completion": "no answer here", "gold": "x+1"},
    {"pred": "x +", "gold": "x+1"},
]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_rows_come_back_in_order_with_verdicts(tmp_path):
    src, out = _write(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    summary = verify_jsonl(src, out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["equal"] for r in lines] == [True, True, False, False, False]
    assert [r["reason"] for r in lines] == ["equal", "equal", "not_equal", "no_answer", "unparsable"]
    assert [r["extracted"] for r in lines] == ["18", "\\frac{1}{2}", "3", None, "x +"]
    assert lines[0]["id"] == "a" and all(r["ms"] >= 0 for r in lines)  # input fields kept
    assert summary["n"] == 5 and summary["equal"] == 2 and summary["accuracy"] == pytest.approx(0.4)
    assert summary["reasons"] == {"equal": 2, "not_equal": 1, "no_answer": 1, "unparsable": 1}
    assert summary["per_second"] > 0


def test_without_output_path_rows_are_returned(tmp_path):
    summary = verify_jsonl(_write(tmp_path / "in.jsonl", ROWS[:2]))
    assert [r["equal"] for r in summary["rows"]] == [True, True]


def test_extractor_and_mode_are_applied(tmp_path):
    src = _write(tmp_path / "in.jsonl", [{"completion": "#### 5 but \\boxed{6}", "gold": "5"}])
    assert verify_jsonl(src, extractor="gsm8k", mode="numeric")["equal"] == 1
    assert verify_jsonl(src, extractor="boxed")["equal"] == 0


@pytest.mark.parametrize("bad, message", [
    ("{not json", "not valid JSON"),
    ('{"pred": "1"}', "'gold'"),
    ('["gold", "pred"]', "'gold'"),
    ('{"gold": "1"}', "exactly one of"),
    ('{"gold": "1", "pred": "1", "completion": "1"}', "exactly one of"),
    ('{"gold": null, "pred": "1"}', "strings or numbers"),
])
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps(ROWS[1]) + "\n\n" + bad + "\n")
    with pytest.raises(ValueError, match=message) as err:
        verify_jsonl(src)
    assert f"{src}:3:" in str(err.value)


def test_unknown_names_are_errors(tmp_path):
    src = _write(tmp_path / "in.jsonl", ROWS[:1])
    with pytest.raises(ValueError, match="unknown extractor"):
        verify_jsonl(src, extractor="nope")
    with pytest.raises(ValueError, match="unknown mode"):
        verify_jsonl(src, mode="nope")
