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
from typing import Any

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


# ---- sharded models (FSDP) ---------------------------------------------------------------------
# Under FSDP each rank holds a shard of every parameter (a DTensor) and of the optimizer state.
# Whatever needs whole tensors (a checkpoint, the final HF folder, a reference reset) goes
# through torch.distributed.checkpoint's state-dict API, a collective: every rank must call it.
# Without FSDP these helpers are the plain state_dict / load_state_dict of the unwrapped model.

def enable_fsdp_on_cpu(accelerator) -> None:
    """Let an FSDP launch shard the model on CPU processes too (gloo).

    accelerate derives the distributed type from the device: CPU processes are always
    MULTI_CPU (DDP), also under an FSDP config, which would train unsharded without a word.
    FSDP2's fully_shard runs on gloo, so switch accelerate's state to FSDP with the plugin the
    launch configured; prepare(), clip_grad_norm_ and no_sync are then accelerate's own FSDP2
    code, the same as on GPUs (tests/test_fsdp.py runs it)."""
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    launched_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if not launched_fsdp or accelerator.distributed_type != DistributedType.MULTI_CPU:
        return
    plugin = FullyShardedDataParallelPlugin()
    if plugin.fsdp_version != 2:
        raise ConfigError("FSDP on CPU processes needs fsdp_version: 2 (fully_shard) in the accelerate config")
    AcceleratorState().fsdp_plugin = plugin
    # AcceleratorState copies distributed_type from PartialState whenever it is instantiated
    # again (accelerate's utilities do): set both, as accelerate itself does for GPUs
    PartialState._shared_state["distributed_type"] = AcceleratorState().distributed_type = DistributedType.FSDP


def is_sharded(accelerator) -> bool:
    from accelerate.utils import DistributedType

    return accelerator.distributed_type == DistributedType.FSDP


def check_sharding_supported(accelerator, lora: bool, value_head: bool, rollout: str) -> None:
    """What mathrl does not run sharded, refused before anything is built."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        # accelerator.backward() there runs engine.backward AND engine.step() on every call, while
        # update.py accumulates micro-batches and steps once per minibatch; clip_grad_norm_
        # returns None (the engine clips); ZeRO-3 state dicts are partitioned. Not run here.
        raise ConfigError("DeepSpeed launches are not supported by mathrl's update loop (README: Scaling out); "
                          "use accelerate_configs/fsdp.yaml for sharding, or multi_gpu_ddp.yaml")
    if not is_sharded(accelerator):
        return
    unsupported = [what for what, on in (("LoRA (lora_rank > 0; its adapters are small: use DDP)", lora),
                                         ("a value head (PPO / advantage gae)", value_head),
                                         ("vLLM rollouts (rollout=vllm)", rollout == "vllm")) if on]
    if unsupported:
        raise ConfigError(f"not supported under FSDP: {', '.join(unsupported)}; launch with a DDP config "
                          f"(accelerate_configs/multi_gpu_ddp.yaml)")


def mark_sharded_for_generation(accelerator, model) -> None:
    """transformers' generate() keeps every rank stepping until all ranks are done
    (synced_gpus) when it recognises an FSDP module; without that, a rank whose completions
    all ended early would stop calling forward and the others would wait for its parameter
    shards forever. It recognises FSDP2 by this attribute (set by its own fully_shard helper,
    not by accelerate's). logprobs.py reads it too: it then makes one forward per micro-batch,
    without prompt-prefix sharing, whose number of calls depends on the completions."""
    if is_sharded(accelerator):
        accelerator.unwrap_model(model)._is_fsdp_managed_module = True


def full_model_state(accelerator, model, on_every_rank: bool = False) -> dict[str, torch.Tensor]:
    """The whole model's state dict: on the main process only (others get {}), or on every
    rank. A collective under FSDP."""
    if not is_sharded(accelerator):
        return accelerator.unwrap_model(model).state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=not on_every_rank))


def load_full_model_state(accelerator, model, state: dict[str, torch.Tensor]) -> None:
    """Load a whole state dict (every rank holds it) into the model, each rank its shard."""
    if not is_sharded(accelerator):
        accelerator.unwrap_model(model).load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))


def full_optimizer_state(accelerator, model, optimizer) -> dict[str, Any]:
    """The optimizer's state for a checkpoint; under FSDP whole tensors keyed by parameter
    name, on the main process only. A collective under FSDP."""
    if not is_sharded(accelerator):
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer.optimizer,
                                    options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_optimizer_state(accelerator, model, optimizer, state: dict[str, Any]) -> None:
    if not is_sharded(accelerator):
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer.optimizer, state, options=StateDictOptions(full_state_dict=True))
