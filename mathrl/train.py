"""train(cfg): the RL loop, top to bottom like the algorithm box of DeepSeekMath (Alg. 1).

    for step = 1..max_steps:
        sample B prompts                       -> G completions each (rollout)
        grade every completion                 -> rewards (verifier, reward.py)
        log-probs of the reference / old policy
        advantages (the Recipe's estimator: group-relative, GAE, process supervision ...)
        mu epochs of policy-loss updates (update.py)
        log, evaluate, checkpoint; iterative RL: reference <- policy

What the algorithm needs (reference? pi_old pass? value head? which advantage and loss? where
the KL goes?) was decided once in the Recipe (recipe.py), read here as `state.recipe`.
Everything that is plumbing (device, accelerate, model loading, checkpoints, the run
directory) lives in run_state.py and checkpoint.py; this file holds only the algorithm.
"""

from __future__ import annotations

import contextlib
import math
from functools import partial
from pathlib import Path

import torch

from mathrl.advantage import AdvantageInputs, constant_groups
from mathrl.checkpoint import DeferredInterrupt, abort_if_diverged, maybe_checkpoint, stop_if_interrupted
from mathrl.config import ConfigError, RunConfig
from mathrl.costs import announce_costs
from mathrl.distributed import (full_model_state, gather_objects, gather_rows, global_step_metrics, local_rows,
                                mean_over_ranks)
from mathrl.evaluate import run_eval
from mathrl.logprobs import completion_logprobs
from mathrl.loss import mismatch_stats
from mathrl.metrics import explained_variance
from mathrl.results import write_samples
from mathrl.reward import shaped_rewards
from mathrl.rollout import merge_groups, teacher_forced_batch
from mathrl.run_state import RunState, build_run_state, finish_run
from mathrl.tracking import ProgressBar
from mathrl.types import Batch
from mathrl.update import UpdateInputs, carries_signal, no_update, policy_update
from mathrl.verify import check_steps

# Several non-finite steps in a row mean the run has diverged: stop (after saving) rather
# than burn compute on skipped updates.
MAX_CONSECUTIVE_SKIPS = 3


def train(cfg: RunConfig, progress: bool = True, resume: str | Path | None = None,
          allow_config_change: bool = False, restart: bool = False) -> Path:
    """Run one training job; returns the run directory. `allow_config_change` and `restart`
    are --resume's options (mathrl/resume.py)."""
    state = build_run_state(cfg, resume=resume, allow_config_change=allow_config_change, restart=restart)
    with state.lock:  # one writer per run directory until the run ends, however it ends
        state.show_progress = progress and state.accelerator.is_main_process  # also the eval bars
        with DeferredInterrupt() as interrupt:  # Ctrl-C: finish the step, save a checkpoint, stop
            if state.step == 0:
                announce_costs(state)  # what a step and an eval will cost, before either starts
                run_eval(state)  # step-0 accuracy: the baseline every curve starts from
            with ProgressBar(cfg.max_steps, state.step, state.show_progress) as bar:
                while state.step < cfg.max_steps:
                    stop_if_interrupted(state, interrupt)
                    metrics = train_step(state)
                    state.step += 1
                    metrics.update(global_step_metrics(state.accelerator, state.meter), step=state.step)
                    if cfg.eval_every and state.step % cfg.eval_every == 0 and state.step < cfg.max_steps:
                        metrics.update(run_eval(state))
                    metrics.update(state.health.check(metrics, state.step))  # loud warnings on silent failure
                    state.log(metrics)
                    bar.update(metrics)
                    abort_if_diverged(state, metrics, MAX_CONSECUTIVE_SKIPS)
                    if cfg.ref_reset_every and state.step % cfg.ref_reset_every == 0:
                        reset_reference(state)  # before the checkpoint, which saves the new reference
                    maybe_checkpoint(state)
            stop_if_interrupted(state, interrupt)
        return finish_run(state)


def reset_reference(state: RunState) -> None:
    """Iterative RL (DeepSeekMath Alg. 1, §4.2.2): the reference becomes the current policy."""
    if state.ref_model is not None:
        state.ref_model.load_state_dict(full_model_state(state.accelerator, state.model, on_every_rank=True))
        state.policy_is_reference = True


def train_step(state: RunState) -> dict[str, float]:
    meter = state.meter
    # ---- 1. sample prompts, 2. roll out G completions each ------------------------------------
    problems = state.sampler.next(state.prompts_per_rank)  # this rank's share of the B prompts
    with meter.phase("rollout"):
        batch = rollout(state, problems)
    # ---- 3. grade -> rewards ------------------------------------------------------------------
    with meter.phase("reward"):
        rewards = grade(state, batch)
    # ---- 4. reference and old-policy log-probs ------------------------------------------------
    with meter.phase("reference"):
        ref_logp = reference_logprobs(state, batch)
    with meter.phase("old_logprobs"):
        old = old_policy_outputs(state, batch)
    # ---- 5. advantages ------------------------------------------------------------------------
    inputs, adv_metrics = advantages(state, batch, rewards, ref_logp, old)
    with meter.phase("old_logprobs"):  # the sampler's own log-probs (vLLM) against the trainer's
        adv_metrics.update(rollout_mismatch(state, batch, old, inputs))
    # ---- 6. mu epochs of updates --------------------------------------------------------------
    with meter.phase("update"):
        if carries_signal(inputs, state.update_params, state.value_head, state.policy_is_reference, state.accelerator):
            update_metrics = policy_update(state.model, state.value_head, state.optimizer, state.scheduler,
                                           state.accelerator, batch, inputs, state.update_params, state.generator)
            state.policy_is_reference &= not update_metrics["optim/steps"]
        else:  # nothing to learn from: a step would only apply weight decay and advance Adam (carries_signal)
            update_metrics = no_update(state.scheduler, state.update_params)
            if inputs.sample_logp is not None:  # no update pass to compare the sampler's log-probs in
                update_metrics.update(mismatch_stats(trainer_logprobs(state, batch), inputs.sample_logp,
                                                     batch.completion_mask))
    # every epoch re-trains them; target_kl may stop early (a step without signal keeps the planned count)
    epochs = int(update_metrics.get("optim/epochs") or state.recipe.passes.train)
    meter.add_tokens("trained", int(batch.attention_mask.sum()) * epochs)
    meter.add_training(batch, epochs)
    write_samples(state, batch, rewards)
    return {**batch_metrics(state, batch), **mean_over_ranks(state.accelerator, {**adv_metrics, **update_metrics})}


def rollout(state: RunState, problems) -> Batch:
    cfg = state.cfg
    if state.recipe.sft:  # SFT trains on the task's worked solutions instead of samples
        targets = [state.task.format_solution(p) for p in problems for _ in range(cfg.group_size)]
        repeated = [p for p in problems for _ in range(cfg.group_size)]
        return teacher_forced_batch(state.tokenizer, repeated, targets, state.device)
    generate = state.generate
    with sampling_model(state) as model:
        batch = generate(model, state.tokenizer, problems, cfg.group_size, state.max_new_tokens,
                         temperature=cfg.temperature, top_p=cfg.top_p, max_rows=cfg.batch_size)
        account_rollout(state, batch)
        if cfg.dynamic_sampling:
            batch = resample_constant_groups(state, batch, generate, model)
    return batch


def sampling_model(state: RunState):
    """The model whose samples are trained on: the policy (online), or the frozen initial model
    (offline RFT, DeepSeekMath §5.2.1: "outputs sampled from the SFT model")."""
    if state.recipe.rollout_from_reference:
        return state.reference()
    return contextlib.nullcontext(state.policy_for_generation())


def account_rollout(state: RunState, batch: Batch) -> None:
    state.meter.add_tokens("prompt", batch.prompt_tokens)
    state.meter.add_tokens("generated", int(batch.completion_mask.sum()))
    state.meter.add_generation(batch)


def resample_constant_groups(state: RunState, batch: Batch, generate, model) -> Batch:
    """DAPO dynamic sampling: groups whose rewards are all equal carry no gradient; replace
    them with fresh prompts' groups, at most `dynamic_sampling_max_tries` extra rollouts."""
    cfg, G = state.cfg, state.cfg.group_size
    for _ in range(cfg.dynamic_sampling_max_tries):
        grade(state, batch)
        constant = constant_groups(batch.rewards, G).nonzero().flatten().tolist()
        if not constant:
            break
        fresh = generate(model, state.tokenizer, state.sampler.next(len(constant)), G,
                         state.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p, max_rows=cfg.batch_size)
        grade(state, fresh)
        account_rollout(state, fresh)  # the extra rollouts cost compute too
        varied = [g for g in range(batch.size // G) if g not in constant]
        fresh_varied = (~constant_groups(fresh.rewards, G)).nonzero().flatten().tolist()
        # keep every varied group; top up with fresh varied ones, then the old constant ones
        keep = [(batch, g) for g in varied] + [(fresh, g) for g in fresh_varied] + [(batch, g) for g in constant]
        batch = merge_groups(keep[: batch.size // G], state.tokenizer.pad_token_id)
    return batch


def grade(state: RunState, batch: Batch) -> torch.Tensor:
    cfg = state.cfg
    if state.recipe.sft:
        return torch.ones(batch.size)
    if len(batch.grades) != batch.size:  # dynamic sampling may have graded this batch already
        batch.grades = state.task.grade_batch(batch.completions, batch.problems)
    lengths = batch.completion_mask.sum(-1).cpu()  # (N,)
    rewards, _ = shaped_rewards(batch.grades, lengths, state.max_new_tokens, cfg.format_reward,
                                state.overlong_buffer, cfg.overlong_penalty)
    batch.rewards = rewards
    return rewards.to(state.device)


def reference_logprobs(state: RunState, batch: Batch) -> torch.Tensor | None:
    if not state.recipe.reference_pass:
        return None  # no KL term: the reference model is never built nor run
    if state.policy_is_reference:  # pi_ref = pi_old: the loss takes the old log-probs (UpdateInputs.ref_is_old)
        return None  # and KL in the reward is 0 (advantages); a pass here would recompute the same numbers
    with state.reference() as ref_model:
        logp = completion_logprobs(ref_model, batch, state.cfg.temperature, state.micro_batch_size)["logp"]
    state.meter.add_forward(batch)
    return logp  # (N, T)


def old_policy_outputs(state: RunState, batch: Batch) -> dict[str, torch.Tensor]:
    """pi_old log-probs (and V_old for PPO). With one update per rollout (mu = 1, one
    minibatch) pi_old is the current policy, so this pass is skipped and the update uses
    logp.detach() — the same numbers without a second forward."""
    cfg = state.cfg
    if not state.recipe.needs_old_pass:
        return {}
    out = completion_logprobs(state.model, batch, cfg.temperature, state.micro_batch_size, state.value_head)
    state.meter.add_forward(batch)
    return out  # logp (N, T), values (N, T)


def rollout_mismatch(state: RunState, batch: Batch, old: dict, inputs: UpdateInputs) -> dict[str, float]:
    """For an engine that reports the log-probs it sampled with (the built-in decoder, vLLM):
    how far they are from the trainer's for the same weights (logged every step), and with
    rollout_is set, the correction of the policy term (loss.ROLLOUT_CORRECTIONS), written into
    `inputs`. Without a pi_old pass, the update measures it where it computes pi_old anyway."""
    cfg, correction = state.cfg, state.recipe.rollout_correction
    if batch.sample_logprobs is None:
        if correction is not None:
            raise ConfigError(f"rollout_is={cfg.rollout_is} needs a rollout that returns the log-probs it sampled "
                              f"with (the built-in decoder or rollout=vllm); this model's rollout returns none")
        return {}
    if "logp" not in old and correction is None:
        inputs.sample_logp = batch.sample_logprobs  # (N, T) policy_update compares (no extra forward)
        return {}
    train_logp = old["logp"] if "logp" in old else trainer_logprobs(state, batch)  # (N, T) pi_old
    sample_logp = batch.sample_logprobs.to(train_logp.device)  # (N, T)
    metrics = mismatch_stats(train_logp, sample_logp, batch.completion_mask)
    if correction is not None:
        weights, keep = correction(torch.exp(train_logp - sample_logp), cfg.rollout_is_cap)  # (N, T), (N, T)
        on = batch.completion_mask.bool()  # (N, T)
        inputs.mask = inputs.mask * keep.to(inputs.mask.dtype)  # (N, T) rejected tokens leave the loss
        inputs.is_weights = weights  # (N, T)
        metrics["rollout/is_weight_mean"] = float(weights[on & keep].mean()) if (on & keep).any() else math.nan
        metrics["rollout/is_rejected_frac"] = float((on & ~keep).sum() / on.sum().clamp(min=1))
    return metrics


def trainer_logprobs(state: RunState, batch: Batch) -> torch.Tensor:
    """pi_old's log-probs (N, T) from a pass of their own, where no pi_old pass ran."""
    state.meter.add_forward(batch)
    return completion_logprobs(state.model, batch, state.cfg.temperature, state.micro_batch_size)["logp"]


def advantages(state: RunState, batch: Batch, rewards: torch.Tensor, ref_logp, old) -> tuple[UpdateInputs, dict]:
    """The Recipe's estimator (advantage.ADVANTAGES) on this batch, and what the loss needs with it."""
    cfg, recipe, mask = state.cfg, state.recipe, batch.completion_mask
    loss_mask = mask * (~batch.truncated).float().unsqueeze(-1) if cfg.mask_truncated else mask.clone()  # DAPO
    kl = kl_in_reward(state, batch, ref_logp, old)  # (N, T) or None
    x = AdvantageInputs(rewards, mask, loss_mask, cfg.group_size, kl, recipe.kl_coef, old.get("values"),
                        cfg.gamma, cfg.lam, steps=lambda: step_rewards(state, batch, rewards),
                        gather=partial(gather_rows, state.accelerator), local=partial(local_rows, state.accelerator))
    adv, returns = recipe.advantage(x)  # (N, T), (N, T) or None
    metrics = {} if kl is None else {"kl/mean": float(kl.sum() / mask.sum().clamp(min=1))}
    if returns is not None:
        metrics["value/explained_var"] = explained_variance(old["values"], returns, mask)
    elif not recipe.sft:
        metrics["adv/zero_std_frac"] = float(constant_groups(rewards, cfg.group_size).float().mean())
        metrics["adv/abs_mean"] = float((adv.abs() * loss_mask).sum() / loss_mask.sum().clamp(min=1))
    return UpdateInputs(adv, loss_mask, old.get("logp"), ref_logp if recipe.kl_in_loss else None, old.get("values"),
                        returns, ref_is_old=recipe.kl_in_loss and state.policy_is_reference), metrics


def kl_in_reward(state: RunState, batch: Batch, ref_logp, old) -> torch.Tensor | None:
    """Per-token KL(pi || pi_ref) for a recipe that subtracts it from the reward (PPO, RLOO)."""
    if not state.recipe.kl_in_reward:
        return None
    if state.policy_is_reference:
        return torch.zeros_like(batch.completion_mask)  # (N, T) KL(pi || pi) = 0; computed, it is rounding noise
    logp = old["logp"] if "logp" in old else trainer_logprobs(state, batch)  # (N, T) pi_old
    return state.recipe.kl(logp, ref_logp) * batch.completion_mask  # (N, T)


def step_rewards(state: RunState, batch: Batch, rewards: torch.Tensor) -> tuple[list[list[float]], list[list[int]]]:
    """grpo_ps: verifiable step rewards (each stated calculation checked), outcome as last step,
    with the completion token where each step ends."""
    step_rewards, step_ends = [], []
    lengths = batch.completion_mask.sum(-1).long().tolist()
    for i, text in enumerate(batch.completions):
        char_ends = state.token_char_ends(batch.completion_ids[i, :lengths[i]])
        steps = check_steps(text)
        ends = [next((t for t, c in enumerate(char_ends) if c >= end), lengths[i] - 1) for end, _ in steps]
        step_rewards.append([1.0 if ok else 0.0 for _, ok in steps] + [float(rewards[i])])
        step_ends.append([min(e, max(lengths[i] - 1, 0)) for e in ends] + [max(lengths[i] - 1, 0)])
    return step_rewards, step_ends


def batch_metrics(state: RunState, batch: Batch) -> dict[str, float]:
    """Reward and rollout statistics of the global batch (every rank's rows)."""
    cfg = state.cfg
    per_row = torch.stack([batch.completion_mask.sum(-1).float(), batch.truncated.float()], -1)  # (N, 2)
    lengths, truncated = gather_rows(state.accelerator, per_row).cpu().unbind(-1)  # (W*N,), (W*N,)
    metrics = {"rollout/len_mean": float(lengths.mean()), "rollout/len_max": float(lengths.max()),
               "rollout/truncated_frac": float(truncated.mean())}
    if not state.recipe.sft:
        grades = gather_objects(state.accelerator, batch.grades)
        metrics.update(shaped_rewards(grades, lengths, state.max_new_tokens, cfg.format_reward,
                                      state.overlong_buffer, cfg.overlong_penalty)[1])
    return metrics
