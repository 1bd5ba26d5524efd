#!/bin/bash
# The v3-sized GRPO run (evals/deepseekmath-unified-v3.yaml's settings, float32 as its runs
# recorded) from the SFT warm start in warm_start/, A then B for seeds 0 and 1 (speed6.md).
# A = HEAD before this work (/tmp/sp/base), B = the worktree; a v3-sized GRPO run each, alternating.
cd /work/wt/speed
out=/tmp/sp/v3ab; mkdir -p $out
for seed in ${SEEDS:-0 1}; do  # SEEDS=2 for the third pair
  for side in A B; do
    if [ $side = A ]; then pp=/tmp/sp/base; else pp=/work/wt/speed; fi
    rm -rf $out/run_${side}_s$seed
    ( cd /tmp && OMP_NUM_THREADS=1 PYTHONPATH=$pp /usr/bin/time -f "wall_s=%e user_s=%U sys_s=%S" \
      /work/wt/speed/.venv/bin/python -m mathrl run --algo grpo --task arithmetic --output $out/run_${side}_s$seed \
      --set model=/tmp/sp/warm_final --set 'task_config={"digits": 2, "operations": ["+"]}' --set seed=$seed \
      --set prompts_per_step=16 --set group_size=8 --set max_steps=100 --set max_new_tokens=32 --set lr=2e-4 \
      --set eval_limit=100 --set eval_every=50 --set eval_samples=16 --set eval_kl=true --set save_final=false \
      --set threads=1 --set dtype=float32 --quiet ) > $out/${side}_s$seed.log 2>&1
    echo "$side s$seed $(date -u +%T) $(tail -1 $out/${side}_s$seed.log)" >> $out/times.txt
  done
done
