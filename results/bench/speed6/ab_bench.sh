#!/bin/bash
# A = the code before this pass (git archive ca83a89 mathrl | tar -x -C /tmp/sp/base), B = this pass.
# ./ab_bench.sh OUTDIR ROUNDS: the tiny bench command, alternating A and B (speed6.md).
# Alternating bench: A = HEAD before this work (/tmp/sp/base on PYTHONPATH), B = the worktree.
out=$1; rounds=$2; shift 2; extra="$*"
mkdir -p $out; cd /tmp
for r in $(seq 1 $rounds); do
  for side in A B; do
    if [ $side = A ]; then pp=/tmp/sp/base; else pp=/work/wt/speed; fi
    OMP_NUM_THREADS=1 PYTHONPATH=$pp /work/wt/speed/.venv/bin/python -m mathrl bench --model tiny --prompts 16 --samples 8 --threads 1 --repeats 5 $extra --output $out/${side}_$r.json > $out/${side}_$r.log 2>&1
  done
done
