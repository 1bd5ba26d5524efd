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
try mathrl/metrics.py "(returns[m] - values[m]).var() / var_returns" "(returns[m] - values[m]).var() * var_returns" tests/test_metrics.py
try mathrl/metrics.py 'raise ValueError("mean_stderr of an empty sequence")' 'raise ValueError("XXmean_stderr of an empty sequenceXX")' tests/test_metrics.py
try mathrl/loss.py "keep = (ratio >= 1.0 / cap) & (ratio <= cap)" "keep = (ratio > 1.0 / cap) & (ratio <= cap)" tests/test_rollout_correction.py
try mathrl/loss.py "keep = (ratio >= 1.0 / cap) & (ratio <= cap)" "keep = (ratio >= 2.0 / cap) & (ratio <= cap)" tests/test_rollout_correction.py
try mathrl/loss.py "keep = (ratio >= 1.0 / cap) & (ratio <= cap)" "keep = (ratio >= 1.0 / cap) & (ratio < cap)" tests/test_rollout_correction.py
try mathrl/loss.py "(ratio < 0.9) | (ratio > 1.1)" "(ratio < 0.9) | (ratio > 2.1)" tests/test_rollout_correction.py
try mathrl/loss.py "(ratio < 0.9) | (ratio > 1.1)" "(ratio <= 0.9) | (ratio > 1.1)" tests/test_rollout_correction.py
try mathrl/loss.py "(ratio < 0.9) | (ratio > 1.1)" "(ratio < 0.9) | (ratio >= 1.1)" tests/test_rollout_correction.py
try mathrl/evaluate.py 'rows = [{"id": p.id,' 'rows = [{"XXidXX": p.id,' tests/test_evaluate.py
try mathrl/evaluate.py '"gold": p.gold, "correct": g.correct,' '"GOLD": p.gold, "correct": g.correct,' tests/test_evaluate.py
git status --short mathrl/
