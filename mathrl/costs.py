"""What a run will cost, said before it starts: a measured estimate of a step and of an eval."""

from __future__ import annotations

import sys

from mathrl.compute import calibrate_decode, calibrate_passes, estimate_costs
from mathrl.distributed import is_sharded
from mathrl.models import AUTOCAST_ATTR
from mathrl.rollout import encode_prompts


EVAL_HINT_S = 60  # an eval estimated above this gets a hint with the eval_limit that fits it


def announce_costs(state) -> None:
    """Print, before anything long starts, what a step and an eval will cost on this machine,
    from a few measured decode steps and log-prob passes, and the dtype the matmuls run in."""
    cfg, recipe = state.cfg, state.recipe
    # FSDP: every forward all-gathers weight shards, so a calibration on rank 0 alone would hang
    if not state.accelerator.is_main_process or cfg.rollout != "hf" or is_sharded(state.accelerator):
        return
    policy = state.policy_for_generation()
    prompts = state.train_problems[:state.prompts_per_rank]
    prompt_tokens = sum(map(len, encode_prompts(state.tokenizer, prompts))) / max(len(prompts), 1)
    cal = calibrate_decode(policy, state.tokenizer, prompts, cfg.group_size,
                           context=int(prompt_tokens) + state.max_new_tokens)
    cal["pass_s_per_row"] = calibrate_passes(state.model, state.tokenizer, prompts, cfg.group_size,
                                             state.micro_batch_size, state.max_new_tokens)
    passes = recipe.passes.forward_equivalents
    eval_rows = len(state.eval_problems) * (1 + cfg.eval_samples)
    est = estimate_costs(cal, state.max_new_tokens, passes, eval_rows,
                         min(64, eval_rows or 1))  # evaluate() decodes 64 rows at a time
    precision = getattr(policy, AUTOCAST_ATTR, None)
    print(f"mathrl: estimate on this machine (every completion at the {state.max_new_tokens}-token limit; decode "
          f"measured at {cal['tok_per_s']:.0f} tok/s over {cal['rows']} rows, "
          f"{'bf16 autocast' if precision is not None else next(state.model.parameters()).dtype}): "
          f"step ~{est['step_s']:.0f} s (rollout {est['rollout_s']:.0f} s, log-prob passes {est['update_s']:.0f} s); "
          f"eval ~{est['eval_s']:.0f} s ({eval_rows} rows) at step 0 and every {cfg.eval_every or '-'} steps",
          file=sys.stderr)
    fits = int(len(state.eval_problems) * EVAL_HINT_S / est["eval_s"]) if est["eval_s"] > EVAL_HINT_S else 0
    if fits >= 8:  # sized by the measured rate; a hint, not a silent cut: the eval set must not depend on the machine
        print(f"mathrl: an eval of {len(state.eval_problems)} problems may take minutes here; --set eval_limit={fits} "
              f"fits about {EVAL_HINT_S} s, --set eval_every=0 evaluates only at the start and the "
              "end", file=sys.stderr)
