"""Loss pieces: pure tensor functions the trainer composes into the PPO / GRPO objective.

Everything here is per token, shape (N, T) over completion tokens with a 0/1 `mask` (1 on the
completion up to and including EOS), until `aggregate` reduces it to a scalar. The trainer
writes the objective as

    loss = aggregate(w * policy_loss(...)[0] + beta * kl(...), mask, mode)
         (+ vf_coef * aggregate(value_loss(...), mask, mode) for PPO)

with w the rollout-correction weight (1 unless a sampler's log-probs are corrected for).
Variants are looked up once (by mathrl/recipe.py) in the plain dicts `POLICY_LOSSES`,
`KL_ESTIMATORS`, `AGGREGATIONS` and `ROLLOUT_CORRECTIONS`, the way verl registers its policy losses.
Masked positions are selected with `torch.where`, not multiplied by 0, so that an inf or NaN
sitting on padding (e.g. a log-prob of a pad token) can never leak into the result.
"""

from __future__ import annotations

import torch

# --------------------------------------------------------------------------- KL estimators
# Schulman, "Approximating KL Divergence" (2020); x = log π_ref(o_t) - log π_θ(o_t), o ~ π_θ.


def k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k1 = -x: unbiased for KL(π_θ || π_ref) but signed and high-variance (PPO KL-in-reward)."""
    return logp - ref_logp  # Schulman 2020 k1: log π_θ - log π_ref  # (N, T)


def k2(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k2 = x² / 2: biased but low-variance; its gradient in the loss equals k1 in the reward."""
    return 0.5 * (logp - ref_logp) ** 2  # Schulman 2020 k2: ½ (log π_θ - log π_ref)²  # (N, T)


def k3(logp: torch.Tensor, ref_logp: torch.Tensor, max_log_ratio: float = 20.0) -> torch.Tensor:
    """k3 = e^x - x - 1 >= 0: unbiased and low-variance; GRPO's KL term.

    The log-ratio is clamped to ±20 because exp overflows fp32 past ~88 (and bf16 sooner):
    one token on which the policy has collapsed relative to the reference would otherwise give
    an inf loss and NaN gradients for the whole batch. e^20 ≈ 5e8 is still a strong penalty;
    clamped tokens get no KL gradient, a trade-off verl makes too.
    """
    x = (ref_logp - logp).clamp(-max_log_ratio, max_log_ratio)  # (N, T)
    return torch.exp(x) - x - 1  # DeepSeekMath Eq. 4: π_ref/π_θ - log(π_ref/π_θ) - 1  # (N, T)


KL_ESTIMATORS = {"k1": k1, "k2": k2, "k3": k3}


def kl(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token KL(π_θ || π_ref) estimate with the named estimator ("k1", "k2", "k3")."""
    return KL_ESTIMATORS[estimator](logp, ref_logp)  # (N, T)


# --------------------------------------------------------------------------- policy surrogate


def clipped_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    adv: torch.Tensor,
    eps_low: float,
    eps_high: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO clipped surrogate per token, as a loss (negated), with DAPO's decoupled clip range.

    adv is (N,) (one per completion, broadcast over its tokens) or (N, T). eps_low == eps_high
    is PPO / GRPO; eps_high > eps_low is DAPO's "clip-higher". Returns (loss, clipped): loss
    (N, T) and a bool (N, T) that is True where the clipped term is the active minimum, i.e.
    the tokens that get no gradient (for `loss/clip_frac`).
    """
    if adv.dim() == 1:
        adv = adv[:, None]  # one advantage per completion  # (N, 1)
    ratio = torch.exp(logp - old_logp)  # ρ_t = π_θ / π_θ_old  # (N, T)
    unclipped = ratio * adv  # (N, T)
    clipped_ratio = ratio.clamp(1.0 - eps_low, 1.0 + eps_high)  # (N, T)
    clipped = clipped_ratio * adv  # (N, T)
    loss = -torch.minimum(unclipped, clipped)  # PPO Eq. 7: -min(ρA, clip(ρ, 1-ε, 1+ε)A)  # (N, T)
    is_clipped = clipped < unclipped  # the min picked the flat (clipped) branch  # (N, T)
    return loss, is_clipped


# --------------------------------------------------------------------------- policy losses
# One signature: fn(logp, old_logp, adv, mask, eps_low, eps_high) -> (loss, clipped_low,
# clipped_high). logp, old_logp, mask: (N, T); adv: (N, T) or (N,). loss is per token (N, T);
# clipped_low / clipped_high are bool (N, T), True where the trust region cut the token's
# gradient from below (ratio < 1 - eps_low, A < 0) or above (ratio > 1 + eps_high, A > 0), as
# TRL's clip_ratio/low and /high. A loss without a trust region returns all-False masks.


def clip(logp, old_logp, adv, mask, eps_low: float, eps_high: float):
    """PPO / GRPO / DAPO: the clipped surrogate of `clipped_surrogate`, with the clip side."""
    loss, is_clipped = clipped_surrogate(logp, old_logp, adv, eps_low, eps_high)  # (N, T), (N, T)
    adv = adv[:, None] if adv.dim() == 1 else adv  # (N, 1) or (N, T)
    # the min picks the clipped branch only below 1 - eps_low with A < 0 and above 1 + eps_high with A > 0
    return loss, is_clipped & (adv < 0), is_clipped & (adv > 0)


def reinforce(logp, old_logp, adv, mask, eps_low: float, eps_high: float):
    """-A log π_θ: the plain policy gradient (Williams 1992), no ratio and no clip.

    With A = 1 on every token it is SFT's negative log-likelihood (DeepSeekMath Eq. 6); with
    A = I(correct) on samples of a frozen model it is RFT's (Eq. 10). Its gradient equals the
    clipped surrogate's at ratio 1, i.e. on-policy with mu = 1; old_logp and eps are unused.
    """
    if adv.dim() == 1:
        adv = adv[:, None]  # (N, 1)
    loss = -adv * logp  # Williams 1992: -A ∇log π  # (N, T)
    never = torch.zeros_like(loss, dtype=torch.bool)  # (N, T)
    return loss, never, never


def gspo(logp, old_logp, adv, mask, eps_low: float, eps_high: float):
    """GSPO-token (Zheng et al. 2025, Eq. 5-10): PPO's clip on the length-normalised sequence ratio.

    s_i = exp(1/|o_i| Σ_t log(π_θ/π_old)) is one ratio per completion (the geometric mean of its
    token ratios). Every token carries the value of s_i with the gradient of its own log-prob,
    s_i,t = sg[s_i] π_θ(o_t)/sg[π_θ(o_t)]; with one advantage per completion and the 1/|o_i|
    token mean (seq_mean_token_mean) the gradient is exactly GSPO's. A whole completion is
    clipped or kept, never single tokens.
    """
    m = mask.bool()  # (N, T)
    zero = torch.zeros_like(logp)  # (N, T)
    log_ratio = torch.where(m, logp.detach() - old_logp, zero)  # (N, T)
    seq_log_ratio = log_ratio.sum(-1, keepdim=True) / m.sum(-1, keepdim=True).clamp(min=1)  # log s_i  # (N, 1)
    ratio = torch.exp(seq_log_ratio + torch.where(m, logp - logp.detach(), zero))  # GSPO Eq. 10: s_i,t  # (N, T)
    adv = adv[:, None] if adv.dim() == 1 else adv  # (N, 1) or (N, T)
    unclipped = ratio * adv  # (N, T)
    clipped = ratio.clamp(1.0 - eps_low, 1.0 + eps_high) * adv  # (N, T)
    is_clipped = clipped < unclipped  # (N, T)
    return -torch.minimum(unclipped, clipped), is_clipped & (adv < 0), is_clipped & (adv > 0)  # GSPO Eq. 5


def cispo(logp, old_logp, adv, mask, eps_low: float, eps_high: float):
    """CISPO (MiniMax 2025, MiniMax-M1 §3.1, Eq. 4-5): REINFORCE with a clipped, stop-gradient
    importance weight, -sg(clip(r, 1 - eps_low, 1 + eps_high)) A log π_θ.

    Unlike PPO's clip, no token loses its gradient: a token whose ratio left the range keeps
    the capped weight. clipped_low / clipped_high mark the tokens whose weight was capped,
    whatever the sign of A. Without clipping it is the plain off-policy policy gradient (Eq. 3).
    """
    ratio = torch.exp(logp.detach() - old_logp)  # sg(r_t)  # (N, T)
    weight = ratio.clamp(1.0 - eps_low, 1.0 + eps_high)  # MiniMax-M1 Eq. 5: r̂_t  # (N, T)
    adv = adv[:, None] if adv.dim() == 1 else adv  # (N, 1) or (N, T)
    loss = -weight * adv * logp  # MiniMax-M1 Eq. 4: -sg(r̂_t) Â_t log π_θ  # (N, T)
    return loss, ratio < 1.0 - eps_low, ratio > 1.0 + eps_high


POLICY_LOSSES = {"clip": clip, "reinforce": reinforce, "gspo": gspo, "cispo": cispo}


# --------------------------------------------------------------------------- value function


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
) -> torch.Tensor:
    """PPO clipped value loss per token, 0 on padding.

    Value clipping is not in the PPO paper; it is OpenAI Baselines' ppo2 ("The 37
    Implementation Details of PPO", detail 9), kept by TRL and OpenRLHF: the value may not
    move more than clip_eps from the rollout-time value in one update, unless that helps.
    """
    values_clipped = old_values + (values - old_values).clamp(-clip_eps, clip_eps)  # (N, T)
    # ppo2: ½ max((V - R)², (V_old + clip(V - V_old, ±ε) - R)²)
    loss = 0.5 * torch.maximum((values - returns) ** 2, (values_clipped - returns) ** 2)  # (N, T)
    return torch.where(mask.bool(), loss, torch.zeros_like(loss))  # (N, T)


# --------------------------------------------------------------------------- aggregation


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x over the tokens where mask is 1; 0 (not NaN) when the mask is empty."""
    m = mask.bool()  # (N, T)
    return torch.where(m, x, torch.zeros_like(x)).sum() / m.sum().clamp(min=1)  # ()


def _row_sums(per_token: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m = mask.bool()  # (N, T)
    return torch.where(m, per_token, torch.zeros_like(per_token)).sum(-1), m.sum(-1)  # (N,), (N,)


def seq_mean_token_mean(
    per_token: torch.Tensor, mask: torch.Tensor, max_len: int | None = None
) -> torch.Tensor:
    """GRPO (DeepSeekMath Eq. 3): 1/G Σ_i 1/|o_i| Σ_t. Every sequence weighs the same, so
    tokens of long completions weigh less; an empty sequence contributes 0 to the mean."""
    sums, lengths = _row_sums(per_token, mask)  # (N,), (N,)
    return (sums / lengths.clamp(min=1)).mean()  # ()


def token_mean(
    per_token: torch.Tensor, mask: torch.Tensor, max_len: int | None = None
) -> torch.Tensor:
    """DAPO (Yu et al. 2025, §3.3 token-level policy gradient loss): 1/Σ|o_i| Σ_i Σ_t.
    Every token weighs the same, so long (often wrong) completions are not under-penalised."""
    return masked_mean(per_token, mask)  # ()


def seq_mean_token_sum_norm(
    per_token: torch.Tensor, mask: torch.Tensor, max_len: int | None = None
) -> torch.Tensor:
    """Dr. GRPO (Liu et al. 2025): Σ_t per sequence divided by a constant max_len, then the mean
    over sequences. A constant normaliser removes GRPO's length bias (1/|o_i|)."""
    if max_len is None or max_len < 1:
        raise ValueError("seq_mean_token_sum_norm needs max_len, the constant length normaliser")
    sums, _ = _row_sums(per_token, mask)  # (N,)
    return (sums / max_len).mean()  # ()


AGGREGATIONS = {
    "seq_mean_token_mean": seq_mean_token_mean,
    "token_mean": token_mean,
    "seq_mean_token_sum_norm": seq_mean_token_sum_norm,
}


def aggregate(
    per_token: torch.Tensor, mask: torch.Tensor, mode: str, max_len: int | None = None
) -> torch.Tensor:
    """Reduce a per-token loss (N, T) to a scalar with the named aggregation (`AGGREGATIONS`);
    the trainer holds the function itself (Recipe.loss_agg)."""
    return AGGREGATIONS[mode](per_token, mask, max_len)  # ()


# --------------------------------------------------------------------------- rollout correction
# A rollout engine (vLLM; another kernel, batch shape or precision) and the trainer assign
# different probabilities to the same sampled token under the same weights, so the samples are
# slightly off-policy for the loss. ratio = π_train(y_t) / π_sampler(y_t), both of the weights
# that sampled (the trainer's π_old), corrects it. One signature: fn(ratio, cap) -> (weight,
# keep): the weight multiplies the token's policy-loss term (a constant: no gradient flows
# through the ratio); tokens with keep False leave the loss and its normaliser.


def truncated_is(ratio: torch.Tensor, cap: float) -> tuple[torch.Tensor, torch.Tensor]:
    """TIS (Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL
    training"): w_t = min(ratio_t, C); every token stays in the loss."""
    return ratio.detach().clamp(max=cap), torch.ones_like(ratio, dtype=torch.bool)  # (N, T), (N, T)


def masked_is(ratio: torch.Tensor, cap: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked IS (Liu et al. 2025, "When Speed Kills Stability"): a token whose ratio leaves
    [1/C, C] is rejected instead of truncated, the others keep w_t = ratio_t. Rejected tokens
    leave the mask too, so that they do not dilute the mean over the kept ones (slime#657)."""
    ratio = ratio.detach()  # (N, T)
    keep = (ratio >= 1.0 / cap) & (ratio <= cap)  # (N, T)
    return torch.where(keep, ratio, torch.zeros_like(ratio)), keep  # (N, T), (N, T)


ROLLOUT_CORRECTIONS = {"truncate": truncated_is, "mask": masked_is}


def mismatch_stats(train_logp: torch.Tensor, sample_logp: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """How far the sampler's log-probs are from the trainer's, over the completion tokens:
    |Δ log p| mean and max, and quantiles of the ratio e^Δ (1 everywhere when they agree)."""
    m = mask.bool()  # (N, T)
    if not m.any():
        return {}
    diff = (train_logp.detach().float() - sample_logp.float())[m]  # (n_tokens,)
    ratio = diff.exp()  # (n_tokens,)
    q = torch.quantile(ratio, ratio.new_tensor([0.05, 0.5, 0.95])).tolist()  # q on ratio's dtype and device
    return {"rollout/logp_abs_diff_mean": float(diff.abs().mean()),
            "rollout/logp_abs_diff_max": float(diff.abs().max()),
            "rollout/is_ratio_p05": q[0], "rollout/is_ratio_p50": q[1], "rollout/is_ratio_p95": q[2],
            # the fraction the issue quotes for bf16 chunking on a 0.5B model (~8%)
            "rollout/is_ratio_off_10pct_frac": float(((ratio < 0.9) | (ratio > 1.1)).float().mean())}
