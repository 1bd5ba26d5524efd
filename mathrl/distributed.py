"""Several processes (DDP through accelerate): sharding checks, gathers and global metrics.

Each of the W ranks holds B / W whole groups of the global batch (prompts_per_step is the
global B), so a 2-process run with B prompts does the same algorithm as a 1-process run with
B prompts. What crosses ranks, and why:
  * gradients: DDP averages them; update.py weighs token_mean so that the average is the
    token mean over every rank's tokens.
  * sequence advantages: computed on every rank's rewards (batch-level estimators such as
    REINFORCE++ normalise over the whole batch), then each rank keeps its own rows.
  * reward and rollout statistics: computed on every rank's rows (exact global values).
  * loss-side metrics: the mean over ranks, the quantity the averaged gradient minimises.
  * tokens and FLOPs: summed; seconds: the slowest rank's (the step waits for it).
With one process every function here is the identity, at no cost.
"""

from __future__ import annotations

import math
import os
import sys

import torch

from mathrl.compute import TOKEN_KINDS, ComputeMeter
from mathrl.config import ConfigError, RunConfig


def check_shardable(cfg: RunConfig, world: int, n_problems: int) -> None:
    """prompts_per_step is the global B: each of the W ranks samples B / W whole groups."""
    if cfg.prompts_per_step % world:
        raise ConfigError(f"prompts_per_step ({cfg.prompts_per_step}) must be a multiple of the number of "
                          f"processes ({world}): each rank samples the same number of whole groups")
    if (cfg.prompts_per_step // world * cfg.group_size) % cfg.minibatches:
        raise ConfigError(f"minibatches ({cfg.minibatches}) must divide each rank's batch "
                          f"({cfg.prompts_per_step // world} prompts x {cfg.group_size})")
    if n_problems < world:
        raise ConfigError(f"{n_problems} training problems cannot be sharded over {world} processes")


def warn_if_launch_lost_processes(world: int) -> None:
    # `accelerate launch --cpu --num_processes N` starts ONE process unless it runs under mpirun;
    # the only trace of the N is MASTER_ADDR. Say so instead of training N times slower than asked.
    if world == 1 and "MASTER_ADDR" in os.environ and os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true":
        print("mathrl: warning: accelerate started a single process: --cpu with --num_processes > 1 needs "
              "mpirun; launch with `accelerate launch --multi_gpu --num_processes N` (torchrun, gloo on CPU) "
              "or --config_file accelerate_configs/cpu_2proc.yaml", file=sys.stderr)


def gather_rows(accelerator, t: torch.Tensor) -> torch.Tensor:
    """Every rank's rows, rank 0's first (the shape must be the same on every rank)."""
    return accelerator.gather(t.contiguous()) if accelerator.num_processes > 1 else t


def gather_objects(accelerator, items: list) -> list:
    """Every rank's list items, rank 0's first."""
    from accelerate.utils import gather_object

    return gather_object(list(items)) if accelerator.num_processes > 1 else list(items)


def local_rows(accelerator, t: torch.Tensor) -> torch.Tensor:
    """This rank's rows of a gather_rows() result."""
    return t.view(accelerator.num_processes, -1, *t.shape[1:])[accelerator.process_index]


def mean_over_ranks(accelerator, metrics: dict[str, float]) -> dict[str, float]:
    """Each metric's mean over the ranks that have a finite value of it (a rank whose every
    micro-batch was skipped has none). Every rank must call it at the same point."""
    if accelerator.num_processes == 1:
        return metrics
    # the key sets can differ (a skipped micro-batch reports no loss terms): agree on the union
    keys = sorted({k for ks in gather_objects(accelerator, [sorted(metrics)]) for k in ks})
    values = torch.tensor([float(metrics.get(k, math.nan)) for k in keys], dtype=torch.float64)
    finite = torch.isfinite(values)
    both = torch.stack([torch.where(finite, values, 0.0), finite.double()]).to(accelerator.device)
    total, count = accelerator.reduce(both, "sum").cpu()
    return {k: float(t / c) if c else math.nan for k, t, c in zip(keys, total, count)}


def global_step_metrics(accelerator, meter: ComputeMeter) -> dict[str, float]:
    """meter.step_metrics() over all ranks: tokens and FLOPs summed, the slowest rank's seconds.

    Every rank's meter is left holding the global cumulative counts, so the checkpoint (which
    the main process writes) resumes them correctly on every rank."""
    out = meter.step_metrics()
    if accelerator.num_processes == 1:
        return out
    local = dict(out)
    summed = [f"tokens/{k}" for k in TOKEN_KINDS] + ["flops/step"]
    slowest = sorted(k for k in out if k.startswith("time/") and k != "time/cumulative_s")
    for keys, how in ((summed, "sum"), (slowest, "max")):
        values = torch.tensor([out[k] for k in keys], dtype=torch.float64, device=accelerator.device)
        out.update(zip(keys, accelerator.reduce(values, how).tolist()))
    for kind in TOKEN_KINDS:
        out[f"tokens/{kind}"] = round(out[f"tokens/{kind}"])
        meter.cumulative_tokens[kind] += out[f"tokens/{kind}"] - local[f"tokens/{kind}"]
        out[f"tokens/cumulative_{kind}"] = meter.cumulative_tokens[kind]
    meter.cumulative_flops += out["flops/step"] - local["flops/step"]
    meter.cumulative_s += out["time/step_s"] - local["time/step_s"]
    out["flops/cumulative"], out["time/cumulative_s"] = meter.cumulative_flops, meter.cumulative_s
    return out
