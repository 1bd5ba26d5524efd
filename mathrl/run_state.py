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
from mathrl.checkpoint import (DeferredInterrupt, checkpoint_path, load_latest, rng_state, save_checkpoint, set_rng_state,
                               write_folder)
from mathrl.compute import ComputeMeter, flop_params, forward_flops, generation_flops, train_flops
from mathrl.costs import choose_micro_batch, choose_threads, reuse_freed_memory, warn_if_no_reward
from mathrl.config import RunConfig
from mathrl.distributed import (check_shardable, check_sharding_supported, enable_fsdp_on_cpu, full_model_state,
                                full_optimizer_state, gather_objects, is_sharded, load_full_model_state,
                                load_full_optimizer_state, mark_sharded_for_generation, warn_if_launch_lost_processes)
from mathrl.evaluate import evaluate
from mathrl.health import Health
from mathrl.models import frozen_copy, load_model, reference_context, save_final
from mathrl.recipe import Recipe
from mathrl.results import RunDir, environment_info, is_run_dir
from mathrl.resume import apply_optimizer_settings, config_changes, record_changes, set_aside, without_checkpoint
from mathrl.rollout import ROLLOUTS
from mathrl.rollout_vllm import VLLMRollout
from mathrl.run_lock import DirLock, lock_run_dir
from mathrl.sampler import ProblemSampler, PromptSampler
from mathrl.tasks import Task, get_task
from mathrl.types import Problem
from mathrl.update import UpdateParams


class RunAborted(RuntimeError):
    """The run stopped on purpose (divergence); its state was saved first."""


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
    micro_batch_size: int  # rows per forward/backward chunk, resolved (costs.choose_micro_batch)
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
    consecutive_skips: int = 0  # non-finite steps in a row (guard_divergence)
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

    # ---- compute accounting (mathrl/compute.py documents the formulas) ------------------
    def flops_for_generation(self, batch) -> float:
        return generation_flops(self.n_params, batch.prompt_tokens, int(batch.completion_mask.sum()))

    def flops_for_forward(self, batch) -> float:
        return forward_flops(self.n_params, int(batch.attention_mask.sum()))

    def flops_for_update(self, batch, epochs: int) -> float:
        return train_flops(self.n_params, int(batch.attention_mask.sum())) * epochs

    # ---- logging, eval, guards ------------------------------------------------------------
    def log(self, metrics: dict[str, Any]) -> None:
        if self.accelerator.is_main_process:
            self.run.append_metrics(metrics)
        tracking.log(self.accelerator, metrics)  # report_to: the same row to TensorBoard / W&B / trackio
        self.last_metrics = metrics

    def guard_divergence(self, metrics: dict[str, Any], max_skips: int) -> None:
        skipped = metrics.get("optim/skipped_steps", 0.0)
        self.consecutive_skips = self.consecutive_skips + 1 if skipped else 0
        if self.consecutive_skips >= max_skips:
            path = checkpoint_now(self)
            tracking.end(self.accelerator)
            raise RunAborted(f"{max_skips} steps in a row had a non-finite loss or gradient; "
                             f"state saved to {path}. Lower lr or check the reward hook.")

    def progress_bar(self, enabled: bool):
        return ProgressBar(self.cfg.max_steps, self.step, enabled and self.accelerator.is_main_process)


class ProgressBar:
    """tqdm over steps, showing reward, eval accuracy and the estimated time left."""

    def __init__(self, total: int, initial: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True,
                        file=sys.stderr)
        self.acc: float | None = None

    def update(self, metrics: dict[str, Any]) -> None:
        acc = [v for k, v in metrics.items() if k.startswith("eval/") and k.endswith("/acc")]
        self.acc = acc[0] if acc else self.acc
        post = {"reward": f"{metrics.get('reward/mean', float('nan')):.3f}",
                "len": f"{metrics.get('rollout/len_mean', float('nan')):.0f}"}
        if self.acc is not None:
            post["eval_acc"] = f"{self.acc:.3f}"
        self.bar.set_postfix(post)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def default_run_dir(cfg: RunConfig) -> Path:
    model = Path(cfg.model).name if Path(cfg.model).exists() else cfg.model.replace("/", "_")
    return Path("runs") / f"{cfg.algo}-{Path(cfg.task).stem}-{model}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def _device(cfg: RunConfig) -> str:
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda but no CUDA GPU is visible; use --set device=cpu")
    return cfg.device


def adamw(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel where every parameter is a plain CPU or CUDA tensor:
    on this CPU it stepped SmolLM2's 135M parameters in 0.10 s instead of 0.67 s (results/bench),
    equal to the loop implementation within 1e-7. Sharded (DTensor) parameters keep the default."""
    plain = all(type(p.data) is torch.Tensor and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=plain or None)


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
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (warmup + 1)) if warmup else 1.0)
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
        meter=ComputeMeter(accelerator.device), n_params=flop_params(accelerator.unwrap_model(model)),
        generator=torch.Generator().manual_seed(cfg.seed), run=RunDir(run_path), update_params=update_params,
        generate={**ROLLOUTS, "vllm": VLLMRollout}[cfg.rollout](),
        health=Health(max_new_tokens, len(tokenizer), verbose=accelerator.is_main_process),
    )
    accelerator.wait_for_everyone()  # every rank has checked run_path before rank 0 writes into it
    if resume:
        restore(state, changes, restart)
    elif accelerator.is_main_process:
        state.run.write_config(run_config_record(state))
    history = state.run.read_metrics() if resume and accelerator.is_main_process else None
    tracking.start(accelerator, cfg.report_to, run_path, cfg.to_dict(), history)
    return state


def run_config_record(state: RunState) -> dict[str, Any]:
    from mathrl.presets import PRESETS

    cfg, task = state.cfg, state.task
    return {**cfg.to_dict(), "resolved": {
        "max_new_tokens": state.max_new_tokens, "overlong_buffer": state.overlong_buffer,
        "micro_batch_size": state.micro_batch_size,
        "task": task.ref, "n_train_problems": len(state.train_problems),
        "n_eval_problems": len(state.eval_problems), "n_params_flop": state.n_params,
        "world_size": state.accelerator.num_processes, "device": str(state.device)},
        "preset_doc": (PRESETS[cfg.algo].__doc__ or "").strip().splitlines()[0],
        "environment": environment_info()}


# ---- checkpoints ------------------------------------------------------------------------------
def checkpoint_state(state: RunState) -> dict[str, Any]:
    """What a checkpoint holds (whole tensors also under FSDP: a collective there)."""
    unwrap = state.accelerator.unwrap_model
    return {
        "step": state.step, "model": full_model_state(state.accelerator, state.model),
        "value_head": unwrap(state.value_head).state_dict() if state.value_head is not None else None,
        "ref_model": state.ref_model.state_dict() if state.ref_model is not None and state.cfg.ref_reset_every else None,
        "optimizer": full_optimizer_state(state.accelerator, state.model, state.optimizer), "scheduler": state.scheduler.state_dict(),
        "sampler": state.sampler.index.state_dict(), "meter": state.meter.state_dict(),
        "generator": state.generator.get_state(), "rng": rng_state(),
        "consecutive_skips": state.consecutive_skips, "policy_is_reference": state.policy_is_reference,
    }


def checkpoint_now(state: RunState) -> Path | None:
    state.saved_step = state.step
    if not state.accelerator.is_main_process:
        if is_sharded(state.accelerator):
            checkpoint_state(state)  # this rank's part of the gathers; the main process writes
        return None
    return save_checkpoint(state.run.checkpoints_dir, state.step, checkpoint_state(state), state.cfg.keep_checkpoints)


def maybe_checkpoint(state: RunState) -> None:
    every = state.cfg.checkpoint_every
    if every and state.step % every == 0 and state.step < state.cfg.max_steps:
        checkpoint_now(state)


def stop_if_interrupted(state: RunState, interrupt: DeferredInterrupt) -> None:
    """Between steps: after Ctrl-C or SIGTERM, checkpoint the last completed step and stop.
    Under several processes a signal that reached any rank stops every rank at the same step."""
    requested = interrupt.requested
    if state.accelerator.num_processes > 1:  # every rank reaches this line once per step
        requested = bool(state.accelerator.reduce(torch.tensor(float(requested), device=state.device), "sum") > 0)
    if not requested:
        return
    if state.step == 0:  # nothing trained yet: a resume restarts from the beginning
        raise interrupt.stop("before the first step; nothing to save")
    if state.saved_step != state.step:
        checkpoint_now(state)
    path = checkpoint_path(state.run.checkpoints_dir, state.step)
    tracking.end(state.accelerator)
    raise interrupt.stop(f"after step {state.step}; checkpoint saved in {path}")


def restore(state: RunState, changes: dict | None = None, restart: bool = False) -> None:
    found = load_latest(state.run.checkpoints_dir)
    if found is None:
        aside = without_checkpoint(state.run, restart)  # stops unless nothing trained is lost (resume.py)
        state.accelerator.wait_for_everyone()  # every rank decided before the main process moves files
        if state.accelerator.is_main_process:
            if aside:
                set_aside(state.run, aside)
            else:
                state.run.rewind_metrics(-1)  # the step-0 eval is redone
        apply_changes(state, changes or {})
        return
    _, saved = found
    unwrap = state.accelerator.unwrap_model
    load_full_model_state(state.accelerator, state.model, saved["model"])
    if state.value_head is not None:
        unwrap(state.value_head).load_state_dict(saved["value_head"])
    if saved["ref_model"] is not None and state.ref_model is not None:
        state.ref_model.load_state_dict(saved["ref_model"])
    load_full_optimizer_state(state.accelerator, state.model, state.optimizer, saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    state.sampler.index.load_state_dict(saved["sampler"])
    state.meter.load_state_dict(saved["meter"])
    state.generator.set_state(saved["generator"])
    set_rng_state(saved["rng"])  # the main process's: split the streams again, as at the start
    if state.accelerator.process_index:
        from accelerate.utils import set_seed

        set_seed(state.cfg.seed + 1_000_003 * state.accelerator.process_index + saved["step"])
    state.step, state.consecutive_skips = saved["step"], saved["consecutive_skips"]
    # checkpoints written before this flag existed: the policy moved once the optimizer stepped
    state.policy_is_reference = saved.get("policy_is_reference", not state.optimizer.state)
    state.run.rewind_metrics(state.step)  # steps logged after this checkpoint are redone
    apply_changes(state, changes or {})


def apply_changes(state: RunState, changes: dict) -> None:
    """--allow-config-change: the changed settings in force from the resumed step on, and recorded."""
    if not changes:
        return
    apply_optimizer_settings(state.optimizer, state.scheduler, state.cfg)  # the checkpoint restored the old ones
    if state.accelerator.is_main_process:
        state.run.write_config(record_changes(run_config_record(state), state.run.read_config(), changes, state.step))


# ---- eval, samples, the end -------------------------------------------------------------------
def run_eval(state: RunState, final: bool = False) -> dict[str, float]:
    if not state.eval_problems:
        return {}
    cfg = state.cfg
    # no reference exists without KL (kl_coef=0, eval_kl=false): enter it only when measuring drift
    measure_kl = cfg.eval_kl is True or (cfg.eval_kl is None and (state.ref_model is not None or cfg.lora_rank > 0))
    with state.meter.phase("eval"), state.reference() if measure_kl else contextlib.nullcontext() as ref:
        summary, rows = evaluate(state.policy_for_generation(), state.tokenizer, state.task, state.eval_problems,
                                 state.max_new_tokens, n=cfg.eval_samples,
                                 temperature=cfg.temperature, top_p=cfg.top_p,
                                 k_values=tuple(k for k in (1, 4, 8, 16, 32, 64) if k <= cfg.eval_samples),
                                 ref_model=ref if measure_kl else None, micro_batch_size=state.micro_batch_size,
                                 max_rows=max(cfg.batch_size, 16), progress=state.show_progress,
                                 policy_is_reference=state.policy_is_reference)
    name = "final" if final else f"step-{state.step:06d}"
    if state.accelerator.is_main_process:
        state.run.write_eval(name, {**summary, "step": state.step})
        state.run.write_samples(f"eval-{name}", rows)
    prefix = f"eval/{state.task.name}/"
    metrics = {prefix + "acc": summary["accuracy"], prefix + "acc_stderr": summary["accuracy_stderr"],
               prefix + "len_mean": summary["len_mean"], prefix + "truncated_frac": summary["truncated_frac"],
               prefix + "no_answer_frac": summary["no_answer_frac"], prefix + "acc_lenient": summary["accuracy_lenient"],
               **{prefix + k: v for k, v in summary.items() if k.startswith(("pass@", "maj@"))}}
    if "kl_drift" in summary:
        metrics[prefix + "kl_k1"] = summary["kl_drift"]["k1_token"]
        metrics[prefix + "kl_k3"] = summary["kl_drift"]["k3_token"]
    if state.step == 0 and not final:
        state.log({**metrics, "step": 0})
        warn_if_no_reward(state, summary)
    return metrics


def write_samples(state: RunState, batch, rewards: torch.Tensor) -> None:
    every = state.cfg.samples_every
    if not every or (state.step + 1) % every and state.step != 0:
        return
    rows = [{"step": state.step + 1, "prompt": p.question, "completion": c, "gold": p.gold,
             "extracted": g.extracted if g else None, "correct": g.correct if g else None, "reward": float(r)}
            for p, c, g, r in zip(batch.problems, batch.completions, batch.grades or [None] * batch.size, rewards)]
    rows = gather_objects(state.accelerator, rows)  # every rank's rows: the file holds the whole global batch
    if state.accelerator.is_main_process:
        state.run.write_samples(f"train-step-{state.step + 1:06d}", rows)


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
