#!/usr/bin/env bash
# The five one-line bugs of issue 27 that the fast suite once missed: apply each, run the test
# that now pins it, revert. Writes five_bugs.txt beside this file. Run from the repository root
# on a clean checkout of mathrl/ (each bug is reverted with `git checkout`).
set -u
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
out=results/mutation/five_bugs.txt
: > "$out"
bug() {  # name, file, old text, new text, tests
  local name=$1 file=$2 old=$3 new=$4; shift 4
  "$PY" - "$file" "$old" "$new" <<'PYEOF'
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
assert text.count(old) == 1, f"{path}: {old!r} found {text.count(old)} times"
open(path, "w").write(text.replace(old, new))
PYEOF
  {
    echo "## $name"
    git diff -U0 "$file" | grep '^[-+][^-+]'
    echo "\$ pytest -q $*"
    OMP_NUM_THREADS=1 "$PY" -m pytest -q -p no:cacheprovider "$@" 2>&1 | grep -E '^(FAILED|[0-9]+ (passed|failed)|.* (passed|failed) in )'
    echo "exit status: ${PIPESTATUS[0]}"
  } >> "$out"
  git checkout -q -- "$file"
  echo >> "$out"
}
bug "grade() default rel_tol 1e-2" mathrl/verify/grade.py \
  "          rel_tol: float = 1e-6, timeout: float = 2.0, percent_as_fraction: bool = False) -> Grade:" \
  "          rel_tol: float = 1e-2, timeout: float = 2.0, percent_as_fraction: bool = False) -> Grade:" \
  tests/verify/test_defaults.py
bug "equivalent() default rel_tol 1e-2" mathrl/verify/grade.py \
  'def equivalent(pred: str, gold: str, mode: str = "math", rel_tol: float = 1e-6,' \
  'def equivalent(pred: str, gold: str, mode: str = "math", rel_tol: float = 1e-2,' \
  tests/verify/test_defaults.py
bug "task spec default rel_tol 1e-2" mathrl/tasks/spec.py \
  '"rel_tol": Field(NUM, default=1e-6),' '"rel_tol": Field(NUM, default=1e-2),' \
  tests/verify/test_defaults.py
bug "base_rewards pays 1.0 when no answer was extracted" mathrl/reward.py \
  "[g.value for g in grades]" "[1.0 if g.extracted is None else g.value for g in grades]" \
  tests/test_reward.py
bug "accuracy_lenient computed from the strict grades" mathrl/evaluate.py \
  "mean_stderr([1.0 if g.correct else 0.0 for g in lenient])" "mean_stderr([1.0 if g.correct else 0.0 for g in grades])" \
  tests/test_evaluate.py
git status --short mathrl/ >> "$out"
cat "$out"
