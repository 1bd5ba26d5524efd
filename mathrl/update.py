"""The optimisation stage: mu epochs of minibatch updates over one rollout batch.

One function serves every preset: the per-token loss is
    policy loss (clipped surrogate, -A log p, ...; -log p for SFT)  + beta * KL (when placed
    in the loss)  - entropy_coef * entropy  (+ vf_coef * clipped value loss for PPO),
aggregated by `loss_agg`. The functions come from the Recipe (mathrl/recipe.py), so nothing
here tests which algorithm runs. Minibatches are split further into micro-batches for memory;
each micro-batch's aggregate is weighted so that the gradient equals that of the whole
minibatch. A minibatch whose loss or gradient norm is not finite is skipped (gradients
dropped) and counted in `optim/skipped_steps`, so no NaN ever reaches the optimizer. A batch
whose gradient is zero in exact arithmetic takes no optimizer step at all (`carries_signal`).
"""

from __future__ import annotations

import math
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Callable

import torch

from mathrl.logprobs import forward_completion
from mathrl.loss import masked_mean, mismatch_stats, value_loss


@dataclass(frozen=True)
class UpdateParams:
    """The scalars and functions the loss needs, taken once from the config and its Recipe
    (loss code never reads either)."""

    policy_loss: Callable  # loss.POLICY_LOSSES entry
    temperature: float
    clip_eps_low: float
    clip_eps_high: float
    kl: Callable | None  # KL estimator of the loss term; None when the KL is not in the loss
    kl_coef: float  # beta of the loss term
    kl_grad_at_reference: bool  # the loss's KL has a gradient even at pi = pi_ref (k1)
    loss_agg: Callable  # loss.AGGREGATIONS entry
    token_weighted: bool  # loss_agg weighs tokens alike: micro-batches weigh by token count
    max_new_tokens: int  # constant divisor of seq_mean_token_sum_norm (Dr. GRPO)
    entropy_coef: float
    vf_coef: float
    value_clip_eps: float
    ppo_epochs: int
    minibatches: int
    micro_batch_size: int
    max_grad_norm: float
    target_kl: float = 0.0  # stop the mu epochs once kl/old_new passes it (cleanrl); 0: never


@dataclass
class UpdateInputs:
    """Per-row tensors of one rollout batch (rows line up with the Batch)."""

    advantages: torch.Tensor  # (N, T) per-token advantages (outcome ones broadcast over T)
    mask: torch.Tensor  # (N, T) tokens that enter the loss
    old_logp: torch.Tensor | None = None  # (N, T); None: mu = 1, the current policy is the old one
    ref_logp: torch.Tensor | None = None  # (N, T); None when no KL term is in the loss
    old_values: torch.Tensor | None = None  # (N, T) PPO
    returns: torch.Tensor | None = None  # (N, T) PPO
    is_weights: torch.Tensor | None = None  # (N, T) rollout-correction weights of the policy term; None: 1
    # (N, T) the rollout engine's log-probs, compared with pi_old where the update computes it
    # anyway (no pi_old pass ran): on the first minibatch, before any optimizer step
    sample_logp: torch.Tensor | None = None
    # the policy that sampled is the reference (step 0, right after a reset): the KL term is taken
    # against the old log-probs, the same numbers as a reference pass (bit-identical under bf16,
    # tests/test_precision.py) without its forward: a minute per step on GSM8K's 512-token rollouts
    ref_is_old: bool = False


# Reported terms that are token means whatever loss_agg is (they weigh micro-batches by tokens)
TOKEN_MEANS = ("loss/clip_frac", "loss/clip_frac_low", "loss/clip_frac_high", "kl/old_new", "kl/mean", "entropy/mean",
               "loss/value")


def _micro_loss(model, value_head, batch, rows, inputs: UpdateInputs, hp: UpdateParams, weight: float,
                token_weight: float, mismatch: list | None = None):
    """Loss of one micro-batch, already weighted to its share of the minibatch loss: `weight`
    for the loss_agg aggregate, `token_weight` (its share of the minibatch's tokens) for the
    value loss, a token mean in every mode. The reported terms come weighted alike."""
    # entropy always: it is logged by every trainer (a softmax over the vocabulary, ~V FLOPs a
    # token against the forward's ~2N); it enters the loss only with entropy_coef > 0
    out = forward_completion(model, batch.input_ids[rows], batch.attention_mask[rows], batch.prompt_len,
                             hp.temperature, with_entropy=True, value_head=value_head,
                             entropy_grad=hp.entropy_coef > 0)
    logp, mask = out["logp"], inputs.mask[rows]  # (n, T), (n, T)
    terms: dict[str, torch.Tensor] = {}
    old = logp.detach() if inputs.old_logp is None else inputs.old_logp[rows]  # (n, T)
    if mismatch is not None and inputs.sample_logp is not None:  # before the first optimizer step: logp is pi_old
        mismatch.append((old, inputs.sample_logp[rows], mask))
    per_token, low, high = hp.policy_loss(logp, old, inputs.advantages[rows], mask, hp.clip_eps_low, hp.clip_eps_high)
    if inputs.is_weights is not None:
        per_token = inputs.is_weights[rows] * per_token  # (n, T) the sampler's numbers corrected for (loss.py)
    terms["loss/clip_frac"] = masked_mean((low | high).to(logp.dtype), mask)
    terms["loss/clip_frac_low"] = masked_mean(low.to(logp.dtype), mask)
    terms["loss/clip_frac_high"] = masked_mean(high.to(logp.dtype), mask)
    log_ratio = logp.detach() - old  # (n, T)
    # KL(pi_old || pi_theta) ~ E[(r - 1) - log r] (Schulman's k3 with the ratio; cleanrl's approx_kl):
    # 0 on the first minibatch of one epoch, how far the update has moved the policy after it
    terms["kl/old_new"] = masked_mean(torch.expm1(log_ratio) - log_ratio, mask)
    terms["loss/policy"] = hp.loss_agg(per_token, mask, hp.max_new_tokens)
    if hp.kl is not None and (inputs.ref_logp is not None or inputs.ref_is_old):
        kl_tok = hp.kl(logp, old if inputs.ref_is_old else inputs.ref_logp[rows])  # (n, T)
        per_token = per_token + hp.kl_coef * kl_tok
        terms["loss/kl"] = hp.loss_agg(kl_tok, mask, hp.max_new_tokens)
        terms["kl/mean"] = masked_mean(kl_tok, mask)  # per-token KL, comparable across presets
    terms["entropy/mean"] = masked_mean(out["entropy"].detach(), mask)
    if hp.entropy_coef > 0:
        per_token = per_token - hp.entropy_coef * out["entropy"]
    loss = hp.loss_agg(per_token, mask, hp.max_new_tokens) * weight
    if value_head is not None:
        v_tok = value_loss(out["values"], inputs.old_values[rows], inputs.returns[rows], mask, hp.value_clip_eps)
        terms["loss/value"] = masked_mean(v_tok, mask)
        loss = loss + hp.vf_coef * terms["loss/value"] * token_weight
    return loss, {k: float(v.detach()) * (token_weight if k in TOKEN_MEANS else weight) for k, v in terms.items()}


def _weights(mask: torch.Tensor, micro: list[slice], token_weighted: bool,
             accelerator) -> tuple[list[float], list[float]]:
    """Share of each micro-batch in its minibatch's aggregate (token_mean weighs by tokens,
    the per-sequence modes by rows), and its share of the tokens (for token means).

    Under DDP the gradient is the mean over the W ranks, so token shares are of the tokens of
    every rank's minibatch, times W: the mean is then the global token mean."""
    total = float(accelerator.reduce(mask.sum(), "sum").clamp(min=1)) / accelerator.num_processes
    tokens = [float(mask[rows].sum()) / total for rows in micro]
    n = mask.shape[0]
    return (tokens if token_weighted else [(rows.stop - rows.start) / n for rows in micro]), tokens


def carries_signal(inputs: UpdateInputs, hp: UpdateParams, value_head, policy_is_reference: bool,
                   accelerator) -> bool:
    """False when the loss gradient of this batch is exactly zero in exact arithmetic.

    That is the case when every advantage is 0 while the policy still equals the reference, so
    a k2 or k3 KL term and its gradient vanish too (k1's, the score function, does not). Adam
    would scale rounding noise up to lr-sized moves (DESIGN rule 17; the drift it caused is in
    results/learning/README.md), and a step would still apply weight decay. The decision is
    the same on every rank (DDP needs all ranks in each backward).
    """
    if value_head is not None or hp.entropy_coef > 0 or hp.kl_grad_at_reference or not policy_is_reference:
        return True
    nonzero = ((inputs.advantages != 0) & (inputs.mask != 0)).any()
    return bool(accelerator.reduce(nonzero.float(), "sum") > 0)


def no_update(scheduler, hp: UpdateParams) -> dict[str, float]:
    """A step without an optimizer step (see carries_signal); the schedule still advances.
    Loss and KL are reported as what they are in exact arithmetic: 0."""
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": on purpose here
        warnings.simplefilter("ignore", UserWarning)
        scheduler.step()
    stats = {"loss/policy": 0.0, "optim/grad_norm": 0.0, "optim/skipped_steps": 0.0, "optim/steps": 0.0,
             "optim/no_signal": 1.0, "optim/lr": scheduler.get_last_lr()[0], "optim/epochs": 0.0,
             "kl/old_new": 0.0, "loss/clip_frac": 0.0, "loss/clip_frac_low": 0.0, "loss/clip_frac_high": 0.0}
    if hp.kl is not None:
        stats.update({"loss/kl": 0.0, "kl/mean": 0.0})
    return stats


def policy_update(model, value_head, optimizer, scheduler, accelerator, batch, inputs: UpdateInputs,
                  hp: UpdateParams, generator: torch.Generator) -> dict[str, float]:
    """mu epochs x minibatches optimizer steps; returns averaged loss statistics.

    With target_kl > 0 the remaining epochs are skipped once the last minibatch of an epoch
    measured kl/old_new above it (cleanrl's ppo.py: `if approx_kl > target_kl: break`), the
    same decision on every rank (their mean)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    sums: dict[str, float] = {}
    n_terms = 0
    skipped = 0
    grad_norms: list[float] = []
    n = batch.size
    mb_size = n // hp.minibatches
    epochs = 0
    mismatch: list = []  # (pi_old, sampler's log-probs, mask) of each micro-batch before the first step
    for _epoch in range(hp.ppo_epochs):
        epochs += 1
        order = torch.randperm(n, generator=generator) if hp.minibatches > 1 else torch.arange(n)
        for m in range(hp.minibatches):
            idx = order[m * mb_size:(m + 1) * mb_size].sort().values
            mb_batch, mb_inputs = _select(batch, inputs, idx)
            micro = [slice(s, min(s + hp.micro_batch_size, mb_size)) for s in range(0, mb_size, hp.micro_batch_size)]
            weights, token_weights = _weights(mb_inputs.mask, micro, hp.token_weighted, accelerator)
            n_bad, mb_kl = 0, 0.0
            for i, (rows, w, tw) in enumerate(zip(micro, weights, token_weights)):
                sync = accelerator.no_sync(model) if i < len(micro) - 1 else nullcontext()
                with sync:
                    loss, terms = _micro_loss(model, value_head, mb_batch, rows, mb_inputs, hp, w, tw,
                                              mismatch if epochs == 1 and m == 0 else None)
                    # backward even on a non-finite loss: under DDP every rank must reach the
                    # same gradient all-reduce; the step is skipped below on every rank alike
                    accelerator.backward(loss)
                if not torch.isfinite(loss):
                    n_bad += 1
                    continue
                for k, v in terms.items():  # already weighted to their share of the minibatch
                    sums[k] = sums.get(k, 0.0) + v
                mb_kl += terms["kl/old_new"]
            finite = not float(accelerator.reduce(torch.tensor(float(n_bad), device=loss.device), "sum"))
            grad_norm = float(accelerator.clip_grad_norm_(params, hp.max_grad_norm)) if finite else math.nan
            if finite and math.isfinite(grad_norm):
                optimizer.step()
                grad_norms.append(grad_norm)
            else:
                skipped += 1
            optimizer.zero_grad(set_to_none=True)
            n_terms += 1
        if hp.target_kl > 0 and (float(accelerator.reduce(torch.tensor(mb_kl, device=loss.device), "mean"))
                                 > hp.target_kl):
            break
    scheduler.step()
    stats = {k: v / max(n_terms, 1) for k, v in sums.items()}
    stats["optim/grad_norm"] = sum(grad_norms) / len(grad_norms) if grad_norms else math.nan
    stats["optim/skipped_steps"] = float(skipped)
    stats["optim/steps"] = float(len(grad_norms))
    stats["optim/no_signal"] = 0.0
    stats["optim/epochs"] = float(epochs)  # < ppo_epochs when target_kl stopped the update
    stats["optim/lr"] = scheduler.get_last_lr()[0]
    if mismatch:
        stats.update(mismatch_stats(*(torch.cat(part) for part in zip(*mismatch))))
    return stats


def _select(batch, inputs: UpdateInputs, idx: torch.Tensor):
    """The rows `idx` of a Batch and its UpdateInputs (minibatch views)."""
    idx_dev = idx.to(batch.input_ids.device)
    take = lambda t: None if t is None else t[idx_dev]  # noqa: E731
    mb_batch = replace(batch, input_ids=batch.input_ids[idx_dev], attention_mask=batch.attention_mask[idx_dev],
                       completion_mask=batch.completion_mask[idx_dev], truncated=batch.truncated[idx_dev],
                       completions=[batch.completions[i] for i in idx.tolist()],
                       problems=[batch.problems[i] for i in idx.tolist()])
    mb_inputs = UpdateInputs(*(take(getattr(inputs, f)) for f in
                               ("advantages", "mask", "old_logp", "ref_logp", "old_values", "returns", "is_weights",
                                "sample_logp")),
                             ref_is_old=inputs.ref_is_old)
    return mb_batch, mb_inputs


def adamw(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel where every parameter is a plain CPU or CUDA tensor (the
    fastest here, results/bench/speed2.md); sharded (DTensor) parameters keep the default."""
    plain = all(type(p.data) is torch.Tensor and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=plain or None)
