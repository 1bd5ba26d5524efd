"""The plumbing of a training run, kept apart from the algorithm in train.py.

RunState owns the device and accelerator, model / reference / value head, optimizer and
scheduler, the prompt sampler, the compute meter and the run directory. Everything that
can fail on bad input (config, task, data, model) is checked before the run directory is
created, so a failed start leaves nothing half-written behind.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from mathrl import tracking
from mathrl.checkpoint import checkpoint_now, restore, write_folder
from mathrl.compute import ComputeMeter, flop_params
from mathrl.config import RunConfig
from mathrl.engine.host import choose_micro_batch, choose_threads, reuse_freed_memory
from mathrl.distributed import (check_shardable, check_sharding_supported, enable_fsdp_on_cpu, full_model_state,
                                is_sharded, mark_sharded_for_generation, warn_if_launch_lost_processes)
from mathrl.evaluate import run_eval
from mathrl.health import Health
from mathrl.models import frozen_copy, load_model, reference_context, save_final
from mathrl.recipe import Recipe
from mathrl.results import RunDir, default_run_dir, is_run_dir, run_config_record
from mathrl.resume import apply_changes, config_changes
from mathrl.rollout import ROLLOUTS
from mathrl.rollout_vllm import VLLMRollout
from mathrl.run_lock import DirLock, lock_run_dir
from mathrl.sampler import ProblemSampler, PromptSampler
from mathrl.tasks import Task, get_task
from mathrl.types import Problem
from mathrl.update import UpdateParams, adamw


@dataclass
class RunState:
    """Everything a step needs; built by build_run_state(). State that lives across steps is
    typed here (DESIGN.md, house style 18); the algorithm's choices are in `recipe`."""

    cfg: RunConfig
    recipe: Recipe
    accelerator: Any  # accelerate.Accelerator
    device: torch.device
    task: Task
    tokenizer: Any  # a Hugging Face tokenizer
    train_problems: list[Problem]
    eval_problems: list[Problem]
    model: Any  # the policy, as prepared by accelerate (DDP-wrapped under several processes)
    ref_model: Any | None  # frozen copy; None without a reference or with LoRA (adapters off instead)
    value_head: Any | None  # PPO's ValueHead, prepared by accelerate
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    update_params: UpdateParams
    max_new_tokens: int
    micro_batch_size: int  # rows per forward/backward chunk, resolved (engine.host.choose_micro_batch)
    overlong_buffer: int  # DAPO soft-overlong window, resolved against max_new_tokens
    sampler: ProblemSampler
    prompts_per_rank: int
    meter: ComputeMeter
    n_params: int  # compute.flop_params of the policy
    generator: torch.Generator  # minibatch shuffles of the update
    run: RunDir
    generate: Callable  # the rollout backend (hf or vllm)
    health: Health
    # ---- what changes step by step (saved in checkpoints) -------------------------------
    step: int = 0
    consecutive_skips: int = 0  # non-finite steps in a row (checkpoint.abort_if_diverged)
    policy_is_reference: bool = True  # no optimizer step since the reference was last the policy
    saved_step: int = -1  # step of the last checkpoint written
    show_progress: bool = False
    last_metrics: dict[str, Any] = field(default_factory=dict)
    start_time: float = field(default_factory=time.time)
    lock: DirLock | None = None  # the run directory's, held until the run ends (run_lock.py)

    # ---- models -------------------------------------------------------------------------
    def policy_for_generation(self):
        return self.accelerator.unwrap_model(self.model)

    @contextlib.contextmanager
    def reference(self):
        """The frozen reference policy: a copy, or for LoRA the base with adapters disabled."""
        if self.ref_model is not None:
            yield self.ref_model
        else:
            model = self.policy_for_generation()
            with reference_context(model):
                yield model

    def token_char_ends(self, ids: torch.Tensor) -> list[int]:
        """Character offset in the decoded completion where each token ends."""
        return [len(self.tokenizer.decode(ids[: k + 1], skip_special_tokens=True)) for k in range(len(ids))]

    # ---- logging ----------------------------------------------------------------------------
    def log(self, metrics: dict[str, Any]) -> None:
        if self.accelerator.is_main_process:
            self.run.append_metrics(metrics)
        tracking.log(self.accelerator, metrics)  # report_to: the same row to TensorBoard / W&B / trackio
        self.last_metrics = metrics


def _device(cfg: RunConfig) -> str:
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda but no CUDA GPU is visible; use --set device=cpu")
    return cfg.device


def build_run_state(cfg: RunConfig, resume: str | Path | None = None, allow_config_change: bool = False,
                    restart: bool = False) -> RunState:
    """The run, ready for its next step, holding the run directory's lock (released by
    `with state.lock:` in train, or here if the start fails). `allow_config_change` and
    `restart` are --resume's options (resume.py)."""
    from accelerate import Accelerator

    threads, why = choose_threads(cfg.threads)
    torch.set_num_threads(threads)
    reuse_freed_memory()
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"mathrl: {threads} torch thread(s) ({why}); set threads=N to override", file=sys.stderr)
    device = _device(cfg)
    run_path = Path(resume) if resume else Path(cfg.output) if cfg.output else default_run_dir(cfg)
    accelerator = Accelerator(cpu=device == "cpu", **tracking.accelerator_kwargs(cfg.report_to, run_path))
    enable_fsdp_on_cpu(accelerator)  # an FSDP launch shards on CPU processes too
    lock = lock_run_dir(run_path, accelerator)  # one writer per run directory, from start-up on
    try:
        changes = config_changes(RunDir(run_path), cfg, allow_config_change) if resume else {}
        state = _build_run_state(cfg, resume, accelerator, run_path, changes, restart)
    except BaseException:
        lock.release(failed_start=not resume)
        raise
    state.lock = lock
    return state


def _build_run_state(cfg: RunConfig, resume, accelerator, run_path: Path, changes: dict, restart: bool) -> RunState:
    from accelerate.utils import set_seed

    from mathrl.value import ValueHead

    world, rank = accelerator.num_processes, accelerator.process_index
    warn_if_launch_lost_processes(world)
    # Every rank builds the same initial weights; prompts are sharded by the sampler and the
    # sampling streams are split after the models are built (below).
    set_seed(cfg.seed)
    # ---- inputs that can be wrong: validated before anything is written ---------------------
    recipe = Recipe.from_config(cfg)  # what the algorithm needs, decided once
    check_sharding_supported(accelerator, cfg.lora_rank > 0, recipe.learns_value, cfg.rollout)
    task = get_task(cfg.task, data_dir=cfg.data_dir, tasks_dir=cfg.tasks_dir, task_config=cfg.task_config or None)
    train_problems = task.load("train", limit=cfg.train_limit, seed=cfg.seed)
    eval_problems = task.load(cfg.eval_split, limit=cfg.eval_limit, seed=0) if cfg.eval_limit else []
    if not train_problems:
        raise ValueError(f"task {task.name} has no training problems")
    check_shardable(cfg, world, len(train_problems))
    model, tokenizer = load_model(cfg.model, seed=cfg.seed, dtype=cfg.dtype, device=accelerator.device,
                                  lora_rank=cfg.lora_rank, lora_alpha=cfg.lora_alpha)
    max_new_tokens = cfg.max_new_tokens or task.max_new_tokens
    micro_batch_size = choose_micro_batch(cfg.micro_batch_size, model.config, max_new_tokens, cfg.group_size)
    # ---- models and optimisation -----------------------------------------------------------
    ref_model = None
    if recipe.needs_reference and not cfg.lora_rank:  # LoRA: the reference is the base with adapters off
        ref_model = frozen_copy(model)
    value_head = ValueHead(model.config.hidden_size).to(accelerator.device) if recipe.learns_value else None
    params = [p for p in model.parameters() if p.requires_grad]
    params += list(value_head.parameters()) if value_head is not None else []
    optimizer = adamw(params, cfg.lr, cfg.weight_decay)
    warmup = max(cfg.warmup_steps, 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  lambda s: min(1.0, (s + 1) / (warmup + 1)) if warmup else 1.0)
    model, optimizer = accelerator.prepare(model, optimizer)
    mark_sharded_for_generation(accelerator, model)
    if value_head is not None:
        value_head = accelerator.prepare(value_head)
    model.train()
    if rank:  # rank 0 keeps the single-process stream, so a 1-process run is unchanged
        set_seed(cfg.seed + 1_000_003 * rank)
    # ---- the run directory ------------------------------------------------------------------
    if not resume and is_run_dir(run_path):  # appending a second run would mix metrics and checkpoints
        raise ValueError(f"{run_path} already holds a run; continue it with --resume {run_path}, "
                         f"or choose another --output")
    n_params = flop_params(accelerator.unwrap_model(model))
    update_params = UpdateParams(
        policy_loss=recipe.policy_loss, temperature=cfg.temperature, clip_eps_low=cfg.clip_eps_low,
        clip_eps_high=cfg.clip_eps_high, kl=recipe.kl if recipe.kl_in_loss else None, kl_coef=recipe.kl_coef,
        kl_grad_at_reference=recipe.kl_grad_at_reference, loss_agg=recipe.loss_agg,
        token_weighted=recipe.token_weighted, max_new_tokens=max_new_tokens,
        entropy_coef=cfg.entropy_coef, vf_coef=cfg.vf_coef, value_clip_eps=cfg.value_clip_eps,
        ppo_epochs=cfg.ppo_epochs, target_kl=cfg.target_kl, minibatches=cfg.minibatches,
        micro_batch_size=micro_batch_size,
        max_grad_norm=cfg.max_grad_norm)
    state = RunState(
        cfg=cfg, recipe=recipe, accelerator=accelerator, device=accelerator.device, task=task, tokenizer=tokenizer,
        train_problems=train_problems, eval_problems=eval_problems, model=model, ref_model=ref_model,
        value_head=value_head, optimizer=optimizer, scheduler=scheduler, max_new_tokens=max_new_tokens,
        micro_batch_size=micro_batch_size,
        overlong_buffer=max_new_tokens // 4 if cfg.overlong_buffer < 0 else cfg.overlong_buffer,
        sampler=ProblemSampler(train_problems, PromptSampler(len(train_problems), cfg.seed, rank, world)),
        prompts_per_rank=cfg.prompts_per_step // world,
        meter=ComputeMeter(accelerator.device, n_params=n_params), n_params=n_params,
        generator=torch.Generator().manual_seed(cfg.seed), run=RunDir(run_path), update_params=update_params,
        generate={**ROLLOUTS, "vllm": VLLMRollout}[cfg.rollout](),
        health=Health(max_new_tokens, len(tokenizer), verbose=accelerator.is_main_process),
    )
    accelerator.wait_for_everyone()  # every rank has checked run_path before rank 0 writes into it
    if resume:
        restore(state, restart)
        apply_changes(state, changes)
    elif accelerator.is_main_process:
        state.run.write_config(run_config_record(state))
    history = state.run.read_metrics() if resume and accelerator.is_main_process else None
    tracking.start(accelerator, cfg.report_to, run_path, cfg.to_dict(), history)
    return state


def finish_run(state: RunState) -> Path:
    """Final checkpoint, final eval and the plain HF model folder; returns the run dir."""
    # Checkpoint first: a run killed during the final eval resumes with the RNG state the eval
    # started from, so the redone eval (its row is rewound as `final`) equals the lost one.
    if state.saved_step != state.step:
        checkpoint_now(state)
    metrics = run_eval(state, final=True)
    if metrics:
        state.log({**metrics, "step": state.step, "final": True})
    weights = full_model_state(state.accelerator, state.model) if is_sharded(state.accelerator) else None
    if state.cfg.save_final and state.accelerator.is_main_process:
        write_folder(state.run.final_dir, lambda tmp: save_final(state.policy_for_generation(), state.tokenizer, tmp,
                                                                 state_dict=weights), "the final model folder")
    tracking.end(state.accelerator)
    state.accelerator.wait_for_everyone()
    return state.run.path
