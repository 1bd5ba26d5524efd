#!/usr/bin/env bash
# Survivors of the recorded mutmut runs (summary.json) that tests added after those runs kill:
# apply each mutant by hand, run its test file, revert. Output: killed_after_run.txt beside this file.
set -u
cd "$(dirname "$0")/../.."
try() {  # file old new test
  python3 - "$1" "$2" "$3" <<'PY'
import sys
p, old, new = sys.argv[1:]
s = open(p).read(); assert s.count(old) == 1, old
open(p, "w").write(s.replace(old, new))
PY
  r=$(OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q -p no:cacheprovider -x "$4" 2>&1 | tail -1)
  git checkout -q -- "$1"
  echo "$3  ->  $r"
}
try mathrl/evaluate.py "state.ref_model is not None or cfg.lora_rank > 0" "state.ref_model is not None or cfg.lora_rank > 1" tests/test_evaluate.py
try mathrl/verify/compare.py 'bool(reply.get("equal", False))' 'bool(reply.get("equal", True))' tests/verify/test_compare_rules.py
try mathrl/verify/compare.py "key = (a, b, rel_tol if approximate else 0.0)" "key = (a, b, rel_tol if (approximate) and False else 0.0)" tests/verify/test_compare_rules.py
try mathrl/verify/compare.py "key = (a, b, rel_tol if approximate else 0.0)" "key = (a, b, rel_tol if (approximate) or True else 0.0)" tests/verify/test_compare_rules.py
try mathrl/verify/numbers.py "if part is None or not 0 <= part < 1:" "if part is None or not 0 < part < 1:" tests/verify/test_numbers.py
try mathrl/verify/numbers.py "if part is None or not 0 <= part < 1:" "if part is None or not 0 <= part <= 1:" tests/verify/test_numbers.py
try mathrl/verify/numbers.py "if part is None or not 0 <= part < 1:" "if part is None or not 0 <= part < 2:" tests/verify/test_numbers.py
try mathrl/verify/extract.py 'line = rest[:_MAX_ANSWER_LINE].split("\n", 1)[0]' 'line = rest[:_MAX_ANSWER_LINE].rsplit("\n", 1)[0]' tests/verify/test_extract.py
try mathrl/verify/extract.py 'line = rest[:_MAX_ANSWER_LINE].split("\n", 1)[0]' 'line = rest[:_MAX_ANSWER_LINE].split("XX\nXX", 1)[0]' tests/verify/test_extract.py
git status --short mathrl/
