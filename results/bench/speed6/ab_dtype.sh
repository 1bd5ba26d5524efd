#!/bin/bash
# ./ab_dtype.sh OUTDIR 3 "bf16|" "fp32|--set dtype=float32": this pass's code, bf16 autocast vs float32.
# usage: ab.sh OUTDIR ROUNDS "labelA|args" "labelB|args" ...
out=$1; rounds=$2; shift 2
mkdir -p $out
for r in $(seq 1 $rounds); do
  for spec in "$@"; do
    label=${spec%%|*}; args=${spec#*|}
    OMP_NUM_THREADS=1 .venv/bin/mathrl bench --model tiny --prompts 16 --samples 8 --threads 1 --repeats 5 $args --output $out/${label}_$r.json > $out/${label}_$r.log 2>&1
  done
done
