"""`mathrl verify`: the thin CLI over compare() and verify_jsonl()."""

import json
import subprocess
import sys

import pytest

typer_testing = pytest.importorskip("typer.testing")
from mathrl.cli import app  # noqa: E402

runner = typer_testing.CliRunner()


@pytest.mark.parametrize("pred, gold, out", [
    ("\\frac{1}{2}", "0.5", "equal (equal)"), ("3", "4", "not equal (not_equal)"),
    ("x+", "1", "not equal (unparsable)"),
])
def test_pred_gold_prints_the_verdict(pred, gold, out):
    result = runner.invoke(app, ["verify", pred, gold])
    assert result.exit_code == 0 and result.output.strip() == out


def test_mode_is_passed_through():
    assert "not equal" in runner.invoke(app, ["verify", "0.5", "\\frac12", "--mode", "exact"]).output
    assert runner.invoke(app, ["verify", "0.5", "\\frac12", "--mode", "math"]).output.startswith("equal")


def test_input_file_prints_the_summary(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"pred": "1/2", "gold": "0.5"}\n{"completion": "#### 3", "gold": "4"}\n')
    result = runner.invoke(app, ["verify", "--input", str(src), "--output", str(out), "--extractor", "gsm8k"])
    assert result.exit_code == 0
    summary = json.loads(result.output)
    assert summary["n"] == 2 and summary["equal"] == 1 and summary["reasons"] == {"equal": 1, "not_equal": 1}
    assert [json.loads(line)["equal"] for line in out.read_text().splitlines()] == [True, False]


@pytest.mark.parametrize("args, message", [
    (["verify"], "give PRED GOLD"), (["verify", "1"], "give PRED GOLD"),
    (["verify", "1", "2", "--mode", "nope"], "unknown mode"),
    (["verify", "--input", "/nonexistent/x.jsonl"], "No such file"),
    (["verify", "1", "2", "--input", "x.jsonl"], "not both"),
])
def test_errors_are_one_line_and_exit_2(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("bad, message", [(b'{oops', "not valid JSON"),
                                          (b'{"pred": "\xff", "gold": "1"}', "not valid UTF-8 (byte 0xff at column "
                                                                             "11)")])
def test_malformed_input_names_the_file_and_line(tmp_path, bad, message):
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b'{"pred": "1", "gold": "1"}\n' + bad + b"\n")
    result = runner.invoke(app, ["verify", "--input", str(src)])
    errors = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(errors) == 1 and f"{src}:2: {message}" in errors[0], result.output


def test_verify_command_does_not_import_torch_or_sympy():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom mathrl.cli import app\n"
            "r = CliRunner().invoke(app, ['verify', '\\\\frac{2}{4}', '0.5'])\n"
            "assert r.output.startswith('equal'), r.output\n"
            "assert 'torch' not in sys.modules and 'sympy' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("args, out", [
    (["verify", "--raw", "Final Answer: the smallest $k$ is 7.", "7"], "equal (equal, extracted: 7)"),
    (["verify", "--raw", "so x = \\boxed{2} or x = \\boxed{3}", "$\\{2, 3\\}$"], "equal (equal, extracted: 2, 3)"),
    (["verify", "--raw", "\\frac{y}{5}+\\frac{3}{5}", "5"], "not equal (not_equal, extracted: "
                                                            "\\frac{y}{5}+\\frac{3}{5})"),
    (["verify", "--raw", "no answer here", "5"], "not equal (no_answer, extracted: None)"),
    (["verify", "Answer: $12$", "\\boxed{12}"], "equal (equal)"),  # extracted mode still unwraps
])
def test_raw_text_mode(args, out):
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and result.output.strip() == out
