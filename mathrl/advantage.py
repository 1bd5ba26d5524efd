"""Advantage estimators: pure tensor functions, one per paper.

The math: outcome estimators `fn(rewards, group_size) -> advantages`: `rewards` is
a flat (N,) float tensor with N = B * G and groups stored contiguously (row i belongs to prompt
i // G, as in `mathrl.types.Batch`); the result is (N,), one advantage per completion, which
the loss broadcasts over that completion's tokens. Token-level ones need more than one scalar
per completion: `gae` (PPO, with a learned value), `process_advantages` (DeepSeekMath process
supervision), with `per_token_rewards` (the KL penalty folded into the reward) and `whiten`.

The registry: `ADVANTAGES` maps every `advantage=` name, outcome and token-level alike, to an
`Estimator` with one signature, `fn(AdvantageInputs) -> (advantages (N, T), returns or None)`.

Groups whose rewards are all equal carry no learning signal: every group-relative estimator
returns exactly 0 for them (never NaN, never a rounding residue such as 1e-17 / 1e-6 = 1e-11),
so that `adv/zero_std_frac` tokens contribute nothing to the gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch

# --------------------------------------------------------------------------- group helpers


def _groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """View flat rewards as (B, G); refuse a batch that is not a whole number of groups."""
    if rewards.dim() != 1 or group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards {tuple(rewards.shape)} is not a flat batch of groups of {group_size}")
    return rewards.view(-1, group_size)  # (B, G)


def _constant(r: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """True where every value along `dim` is equal: the zero-variance groups.

    Tested by max == min rather than std == 0 because a float mean of equal values can differ
    from them in the last bit (0.1 + 0.1 + 0.1 = 0.30000000000000004), which std would see.
    """
    return r.amax(dim, keepdim=True) == r.amin(dim, keepdim=True)  # (B, 1)


def constant_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B,) True for each group whose rewards are all equal: no signal (adv/zero_std_frac, DAPO)."""
    return _constant(_groups(rewards, group_size)).squeeze(-1)  # (B,)


def _centred(r: torch.Tensor) -> torch.Tensor:
    """r - mean over the last dim, exactly 0 in constant groups (and so in groups of one)."""
    centred = r - r.mean(-1, keepdim=True)  # (B, G)
    return torch.where(_constant(r), torch.zeros_like(r), centred)  # (B, G)


def _std(x: torch.Tensor) -> torch.Tensor:
    """Unbiased std over the last dim; 0 (not NaN) for a single element."""
    if x.shape[-1] < 2:
        return torch.zeros_like(x[..., :1])  # (B, 1)
    return x.std(-1, keepdim=True, unbiased=True)  # (B, 1)


# --------------------------------------------------------------------------- outcome estimators


def grpo(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """GRPO outcome supervision: each completion's reward normalised within its group.

    DeepSeekMath §4.1.2 uses the std of the group; we use the unbiased std (torch default, as
    in TRL and verl) and add eps so that near-constant groups stay finite.
    """
    r = _groups(rewards, group_size)  # (B, G)
    adv = _centred(r) / (_std(r) + eps)  # DeepSeekMath §4.1.2: (r - mean(r)) / std(r)  # (B, G)
    return adv.reshape(-1)  # (N,)


def dr_grpo(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training"): no std division.

    Dividing by the group std up-weights prompts that are nearly always solved or nearly always
    failed (small std); Dr. GRPO removes that question-level difficulty bias.
    """
    r = _groups(rewards, group_size)  # (B, G)
    return _centred(r).reshape(-1)  # Dr. GRPO: r - mean(r), no / std(r)  # (N,)


def rloo(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO (Ahmadian et al. 2024, after Kool et al. 2019): leave-one-out baseline.

    r_i - 1/(G-1) Σ_{j≠i} r_j equals G/(G-1) (r_i - mean(r)); the baseline excludes the sample
    itself, which keeps the estimator unbiased. A group of one has no baseline and gets 0.
    """
    r = _groups(rewards, group_size)  # (B, G)
    if group_size == 1:
        return torch.zeros_like(rewards)  # (N,)
    adv = _centred(r) * (group_size / (group_size - 1))  # RLOO: r_i - mean_{j≠i} r_j  # (B, G)
    return adv.reshape(-1)  # (N,)


def reinforce_pp(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """REINFORCE++ (Hu 2025): rewards normalised over the whole batch, not per group.

    Deviation: OpenRLHF whitens per-token returns that include a k1 KL-in-reward term; here the
    outcome reward alone is normalised (N,). For the KL-in-reward form build token rewards with
    `per_token_rewards` and normalise them with `whiten`. `group_size` is unused.
    """
    r = rewards.view(1, -1)  # (1, N)
    adv = _centred(r) / (_std(r) + eps)  # REINFORCE++: (r - mean_batch) / std_batch  # (1, N)
    return adv.reshape(-1)  # (N,)


def reinforce_pp_baseline(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """REINFORCE++-baseline (Hu 2025, OpenRLHF): group mean subtracted, then batch-normalised.

    The group mean removes prompt difficulty; the batch std (instead of GRPO's group std) keeps
    the scale of easy and hard prompts comparable without GRPO's difficulty bias.
    """
    centred = _centred(_groups(rewards, group_size)).view(1, -1)  # r - mean_group  # (1, N)
    # The batch mean of group-centred rewards is 0 by construction; subtracting it again would
    # only add rounding residue to the constant groups, which must stay exactly 0.
    adv = centred / (_std(centred) + eps)  # batch whitening  # (1, N)
    return adv.reshape(-1)  # (N,)


def online_rft(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Online rejection-sampling fine-tuning: gradient coefficient 1 on correct samples, else 0.

    DeepSeekMath Eq. 10-11 (GC_RFT = I(o)): "correct" is reward > 0, so shaping penalties
    (negative rewards) never make a sample a positive target. `group_size` is unused.
    """
    return (rewards > 0).to(rewards.dtype)  # DeepSeekMath Eq. 11: I(o)  # (N,)


# --------------------------------------------------------------------------- the adv_std knob
# An outcome estimator is a baseline (centring) followed by a choice of std division. The
# knob `adv_std` keeps the centring and replaces the division: none | group | batch. Each
# estimator's centring without its own division (online_rft has no baseline: not listed).


def batch_centred(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """r - mean over the whole batch: REINFORCE++'s baseline before its std division."""
    return _centred(rewards.view(1, -1)).reshape(-1)  # (N,)


CENTRED = {
    "grpo": dr_grpo,  # group mean
    "dr_grpo": dr_grpo,
    "rloo": rloo,  # leave-one-out mean
    "reinforce_pp": batch_centred,  # batch mean
    "reinforce_pp_baseline": dr_grpo,  # group mean
}


def no_std(adv: torch.Tensor, rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    return adv  # (N,)


def group_std(adv: torch.Tensor, rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """Divide by the unbiased std of the rewards of each sample's group (GRPO's division)."""
    if group_size < 2:
        return adv  # (N,) the std of a single value is undefined: leave it unscaled
    std = rewards.view(-1, group_size).std(-1, keepdim=True).expand(-1, group_size).reshape(-1)  # (N,)
    return adv / (std + eps)  # (N,)


def batch_std(adv: torch.Tensor, rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """Divide by the unbiased std of the centred advantages over the whole batch (REINFORCE++'s)."""
    if adv.numel() < 2:
        return adv  # (N,)
    return adv / (adv.std() + eps)  # (N,)


ADV_STD = {"none": no_std, "group": group_std, "batch": batch_std}


def rescaled(centred, divide, rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """An estimator built from a centring (CENTRED) and a std division (ADV_STD)."""
    return divide(centred(rewards, group_size), rewards, group_size)  # (N,)

# --------------------------------------------------------------------------- token-level estimators


def _masked_mean_var(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased variance of x over mask; (0, 0) for < 2 tokens instead of NaN."""
    n = mask.sum()
    mean = torch.where(mask.bool(), x, 0).sum() / n.clamp(min=1)  # ()
    sq = torch.where(mask.bool(), (x - mean) ** 2, 0).sum()  # ()
    var = torch.where(n > 1, sq / (n - 1).clamp(min=1), torch.zeros_like(sq))  # ()
    return mean, var


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """Masked whitening of PPO advantages, as TRL's `masked_whiten` (unbiased var, eps 1e-8).

    shift_mean=False keeps the original mean (used for returns). Positions outside the mask come
    back as 0 so padding never carries an advantage. With fewer than 2 masked tokens the var is
    taken as 0, so the result stays finite.
    """
    mean, var = _masked_mean_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + eps)  # (N, T)
    if not shift_mean:
        out = out + mean  # (N, T)
    return torch.where(mask.bool(), out, torch.zeros_like(out))  # (N, T)


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over completion tokens (right-padded).

    rewards, values, mask: (N, T); values[:, t] = V(s_t), the value before emitting token t.
    The episode ends after the last real token, so the value beyond it is 0 (values on padding
    are ignored). Returns (advantages, returns), both (N, T) and 0 on padding;
    returns = advantages + values are the value-function targets.
    """
    m = mask.to(values.dtype)  # (N, T)
    v = values * m  # value beyond the last real token is 0  # (N, T)
    r = rewards * m  # (N, T)
    n, t_len = v.shape
    adv = torch.zeros_like(v)  # (N, T)
    next_adv = v.new_zeros(n)  # (N,)
    next_v = v.new_zeros(n)  # (N,)
    for t in reversed(range(t_len)):
        delta = r[:, t] + gamma * next_v - v[:, t]  # δ_t = r_t + γ V_{t+1} - V_t  # (N,)
        next_adv = (delta + gamma * lam * next_adv) * m[:, t]  # Schulman et al. 2016 Eq. 16  # (N,)
        adv[:, t] = next_adv
        next_v = v[:, t]
    return adv, adv + v  # (N, T), (N, T)


def process_advantages(
    step_rewards: list[list[float]],
    step_token_ends: list[list[int]],
    group_size: int,
    T: int,
    eps: float = 1e-6,
) -> torch.Tensor:
    """GRPO process supervision (DeepSeekMath §4.1.3): per-step rewards -> per-token advantages.

    step_rewards[i][j] is the reward of step j of sample i; step_token_ends[i][j] the index of
    the last completion token of that step. All step rewards of the G outputs of a group are
    normalised together (unbiased std + eps, as `grpo`; a constant group gives 0); a token's
    advantage is the sum of the normalised rewards of the steps that end at or after it.
    Samples with no steps, and tokens after the last step, get 0. Returns (N, T) float32.
    """
    n = len(step_rewards)
    if len(step_token_ends) != n or group_size < 1 or n % group_size:
        raise ValueError(f"{n} reward lists, {len(step_token_ends)} end lists: not groups of {group_size}")
    for i, (rs, ends) in enumerate(zip(step_rewards, step_token_ends)):
        if len(rs) != len(ends) or any(not 0 <= e < T for e in ends):
            raise ValueError(f"sample {i}: rewards {rs} do not match step ends {ends} within [0, {T})")
    at_end = torch.zeros(n, T)  # normalised step reward placed at the step's last token  # (N, T)
    for g in range(0, n, group_size):
        rows = range(g, g + group_size)
        flat = torch.tensor([r for i in rows for r in step_rewards[i]], dtype=torch.float32)  # (S,)
        if flat.numel() == 0:
            continue
        flat = flat.view(1, -1)  # (1, S)
        # DeepSeekMath §4.1.3: r̃ = (r - mean(R)) / std(R) over all steps of the group's G outputs
        norm = (_centred(flat) / (_std(flat) + eps)).view(-1)  # (S,)
        k = 0
        for i in rows:
            for end in step_token_ends[i]:
                at_end[i, end] += norm[k]
                k += 1
    # DeepSeekMath §4.1.3: Â_{i,t} = Σ_{index(j) >= t} r̃^{index(j)}: a reverse cumulative sum.
    return at_end.flip(-1).cumsum(-1).flip(-1)  # (N, T)


def per_token_rewards(
    score: torch.Tensor, mask: torch.Tensor, kl_penalty: torch.Tensor | None = None
) -> torch.Tensor:
    """Token rewards for PPO / RLOO with the KL penalty in the reward (Ouyang et al. 2022 Eq. 2).

    score (N,) is credited at the last real token of each completion; kl_penalty (N, T), if
    given, is β·KL per token with β already multiplied in by the caller and is subtracted on
    real tokens. A completion with no real tokens has nowhere to put its score and gets 0.
    """
    m = mask.bool()  # (N, T)
    positions = torch.arange(1, mask.shape[1] + 1, device=mask.device)  # (T,)
    last = (m * positions).argmax(-1)  # index of the last real token (robust to gaps)  # (N,)
    has_tokens = m.any(-1)  # (N,)
    out = torch.zeros(mask.shape, dtype=score.dtype, device=score.device)  # (N, T)
    rows = torch.arange(mask.shape[0], device=mask.device)  # (N,)
    out[rows, last] = torch.where(has_tokens, score, torch.zeros_like(score))  # r_T = score  # (N, T)
    if kl_penalty is not None:
        out = out - torch.where(m, kl_penalty, torch.zeros_like(kl_penalty))  # r_t -= β KL_t  # (N, T)
    return out  # (N, T)


# --------------------------------------------------------------------------- the registry


@dataclass
class AdvantageInputs:
    """What an estimator may read about one rollout batch; rows are completions, groups contiguous."""

    rewards: torch.Tensor  # (N,) verifier reward plus shaping, one per completion
    mask: torch.Tensor  # (N, T) the completion's tokens
    loss_mask: torch.Tensor  # (N, T) tokens that enter the loss (mask_truncated drops truncated rows)
    group_size: int
    kl: torch.Tensor | None = None  # (N, T) per-token KL to the reference when it goes into the reward
    kl_coef: float = 0.0  # beta of that KL
    values: torch.Tensor | None = None  # (N, T) V_old, for an estimator with needs_values=True
    gamma: float = 1.0
    lam: float = 1.0
    # per completion: step rewards and the last token of each step; a thunk, because decoding
    # every token prefix is slow and only process supervision reads it
    steps: Callable[[], tuple[list[list[float]], list[list[int]]]] | None = None
    # this rank's rows -> every rank's rows and back (distributed.gather_rows / local_rows), so
    # that batch-level estimators (REINFORCE++, adv_std=batch) see the global batch
    gather: Callable[[torch.Tensor], torch.Tensor] = lambda t: t
    local: Callable[[torch.Tensor], torch.Tensor] = lambda t: t


@dataclass(frozen=True)
class Estimator:
    """A registry entry: fn(AdvantageInputs) -> (advantages (N, T), value targets (N, T) or None)."""

    fn: Callable[[AdvantageInputs], tuple[torch.Tensor, torch.Tensor | None]]
    needs_values: bool = False  # reads inputs.values: the run learns a value head (PPO)
    grouped: bool = False  # compares the samples of a group: needs group_size >= 2
    outcome: Callable[[torch.Tensor, int], torch.Tensor] | None = None  # its fn(rewards (N,), G) -> (N,), if any

    def __call__(self, x: AdvantageInputs) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.fn(x)


def outcome(fn: Callable[[torch.Tensor, int], torch.Tensor], grouped: bool = False) -> Estimator:
    """An outcome estimator fn(rewards (N,), G) -> (N,) as a registry entry."""
    return Estimator(partial(_outcome_estimate, fn), grouped=grouped, outcome=fn)


# A module-level function, not a closure in outcome(): outcome() runs at import, so mutation
# testing could only reach a closure's body through the import (issue 27).
def _outcome_estimate(fn, x: AdvantageInputs) -> tuple[torch.Tensor, None]:
    """The KL in the reward summed over each completion; fn over every rank's rows; this rank's
    advantages broadcast over its tokens."""
    seq_rewards = x.rewards if x.kl is None else x.rewards - x.kl_coef * x.kl.sum(-1)  # (N,)
    adv = x.local(fn(x.gather(seq_rewards), x.group_size))  # (N,)
    return adv.unsqueeze(-1).expand_as(x.loss_mask), None  # (N, T)


def ppo_gae(x: AdvantageInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO: GAE over per-token rewards (score at the last token, minus beta * KL), whitened."""
    kl_penalty = None if x.kl is None else x.kl_coef * x.kl  # (N, T)
    adv, returns = gae(per_token_rewards(x.rewards, x.mask, kl_penalty), x.values, x.mask, x.gamma, x.lam)  # (N, T)
    return whiten(adv, x.loss_mask), returns  # (N, T), (N, T)


def process(x: AdvantageInputs) -> tuple[torch.Tensor, None]:
    """GRPO process supervision: step rewards normalised over the group, summed from each token on."""
    step_rewards, step_ends = x.steps()
    return process_advantages(step_rewards, step_ends, x.group_size, x.mask.shape[1]).to(x.rewards.device), None


# SFT: -log p of given solutions, a gradient coefficient of 1 on every token (DeepSeekMath Eq. 6)
LIKELIHOOD = Estimator(lambda x: (torch.ones_like(x.loss_mask), None))

ADVANTAGES: dict[str, Estimator] = {
    "grpo": outcome(grpo, grouped=True),
    "dr_grpo": outcome(dr_grpo, grouped=True),
    "rloo": outcome(rloo, grouped=True),
    "reinforce_pp": outcome(reinforce_pp),
    "reinforce_pp_baseline": outcome(reinforce_pp_baseline, grouped=True),
    "online_rft": outcome(online_rft),
    "gae": Estimator(ppo_gae, needs_values=True),
    "process": Estimator(process, grouped=True),
}
