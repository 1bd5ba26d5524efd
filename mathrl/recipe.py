"""The Recipe: what an algorithm needs, decided once from the config.

A preset (presets.py) is a bag of config values; the trainer needs answers: is there a
reference model? does a pi_old pass run before the update? a value head? which advantage,
which policy loss, where does the KL go? Each answer is derived here, once, and train.py,
run_state.py, bench.py and compare.py read it instead of re-deciding from config strings (the
rule for which forward passes run once lived in four places and had drifted apart).

String flags of the config are looked up here exactly once (DESIGN.md, house style 3); what
the Recipe holds are booleans, numbers and the functions themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from mathrl.advantage import ADV_STD, ADVANTAGES, CENTRED, LIKELIHOOD, Estimator, outcome, rescaled
from mathrl.compute import forward_flops, generation_flops, train_flops
from mathrl.config import ConfigError, RunConfig
from mathrl.loss import AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, ROLLOUT_CORRECTIONS, token_mean

# Policy losses that never read pi_old: several epochs need no pi_old pass for them.
RATIO_FREE = ("reinforce",)


@dataclass(frozen=True)
class Passes:
    """The model passes one training step runs (compute.py's accounting, in one place)."""

    generate: bool  # sampling G completions per prompt (SFT trains on given solutions instead)
    # no-grad forward passes over the batch: reference log-probs, pi_old (and V_old, or for the KL in the reward)
    forward: int
    train: int  # forward + backward passes over the batch: one per epoch (mu)

    @property
    def forward_equivalents(self) -> float:
        """The passes over the batch after sampling, in forwards (a training pass costs 3)."""
        return self.forward + self.train * train_flops(1, 1) / forward_flops(1, 1)

    def flops(self, n_params: int, prompt_tokens: float, generated_tokens: float, batch_tokens: float) -> float:
        """compute.py's formulas: batch_tokens = prompt + completion tokens of the trained rows."""
        gen = generation_flops(n_params, prompt_tokens, generated_tokens) if self.generate else 0.0
        return (gen + forward_flops(n_params, batch_tokens) * self.forward
                + train_flops(n_params, batch_tokens) * self.train)


@dataclass(frozen=True)
class Recipe:
    sft: bool  # trains -log p of the task's worked solutions: no sampling, no reward, advantage 1
    rollout_from_reference: bool  # offline: the frozen reference (the initial model) samples, not the policy
    needs_reference: bool  # a frozen reference exists (KL term, offline rollouts or eval_kl=true; LoRA: the base)
    reference_pass: bool  # the reference's log-probs are computed every step (for the KL term)
    # pi_old (and V_old) forward before the update: mu * minibatches > 1 with a ratio, or a value head
    needs_old_pass: bool
    learns_value: bool  # PPO: a value head is trained beside the policy (its estimator reads V_old)
    advantage: Estimator  # advantage.ADVANTAGES entry (with adv_std's division); SFT: advantage.LIKELIHOOD
    policy_loss: Callable  # loss.POLICY_LOSSES entry: fn(logp, old_logp, adv, eps_low, eps_high)
    kl: Callable | None  # KL estimator fn(logp, ref_logp) -> (N, T); None without a KL term
    kl_coef: float  # beta, wherever the KL goes; 0 without a KL term
    kl_in_reward: bool  # beta * KL per token is subtracted from the reward (PPO, RLOO, REINFORCE++)
    kl_in_loss: bool  # beta * KL is added to the per-token loss (GRPO)
    kl_grad_at_reference: bool  # k1 in the loss has a gradient even where pi = pi_ref (its score function)
    loss_agg: Callable  # loss.AGGREGATIONS entry fn(per_token, mask, max_new_tokens) -> ()
    token_weighted: bool  # loss_agg weighs every token alike: micro-batches weigh by their token count
    rollout_correction: Callable | None  # loss.ROLLOUT_CORRECTIONS entry fn(ratio, cap) -> (weight, keep); None: off
    passes: Passes

    @classmethod
    def from_config(cls, cfg: RunConfig) -> "Recipe":
        sft = cfg.loss == "sft"
        if not sft and cfg.advantage not in ADVANTAGES:  # SFT has no advantage
            raise ConfigError(f"unknown advantage {cfg.advantage!r}; choose one of {', '.join(ADVANTAGES)}")
        if cfg.policy_loss not in POLICY_LOSSES:
            raise ConfigError(f"unknown policy_loss {cfg.policy_loss!r}; choose one of {', '.join(POLICY_LOSSES)}")
        if cfg.rollout_is != "none" and cfg.rollout_is not in ROLLOUT_CORRECTIONS:
            raise ConfigError(f"unknown rollout_is {cfg.rollout_is!r}; choose none, {', '.join(ROLLOUT_CORRECTIONS)}")
        if cfg.adv_std != "auto" and (sft or ADVANTAGES[cfg.advantage].outcome is None):
            raise ConfigError(f"adv_std={cfg.adv_std} applies to outcome advantages; "
                              f"{'SFT has none' if sft else cfg.advantage + ' normalises its own'}: leave adv_std=auto")
        kl_term = cfg.kl_coef > 0 and not sft
        kl_in_loss = kl_term and cfg.kl_placement == "loss"
        kl_in_reward = kl_term and cfg.kl_placement == "reward"
        learns_value = not sft and ADVANTAGES[cfg.advantage].needs_values
        ratio = cfg.policy_loss not in RATIO_FREE
        needs_old_pass = not sft and ((ratio and cfg.ppo_epochs * cfg.minibatches > 1) or learns_value)
        offline = not sft and cfg.rollout_from == "reference"
        return cls(
            sft=sft,
            rollout_from_reference=offline,
            needs_reference=kl_term or offline or cfg.eval_kl is True,
            reference_pass=kl_term,
            needs_old_pass=needs_old_pass,
            learns_value=learns_value,
            advantage=LIKELIHOOD if sft else outcome_advantage(cfg.advantage, cfg.adv_std),
            # SFT is the likelihood of given solutions: no ratio to an old policy that never sampled them
            policy_loss=POLICY_LOSSES["reinforce" if sft else cfg.policy_loss],
            kl=KL_ESTIMATORS[cfg.kl_estimator] if kl_term else None,
            kl_coef=cfg.kl_coef if kl_term else 0.0,
            kl_in_reward=kl_in_reward,
            kl_in_loss=kl_in_loss,
            kl_grad_at_reference=kl_in_loss and cfg.kl_estimator == "k1",
            loss_agg=AGGREGATIONS[cfg.loss_agg],
            token_weighted=AGGREGATIONS[cfg.loss_agg] is token_mean,
            rollout_correction=None if sft else ROLLOUT_CORRECTIONS.get(cfg.rollout_is),
            passes=Passes(generate=not sft, forward=int(kl_term) + int(needs_old_pass or kl_in_reward),
                          train=cfg.ppo_epochs),
        )


def outcome_advantage(name: str, adv_std: str) -> Estimator:
    """The estimator `name` with the std division `adv_std` asks for.

    auto: the estimator as its paper defines it. none | group | batch: the estimator's own
    baseline (advantage.CENTRED), divided by nothing, the group's reward std or the batch's
    advantage std, so that e.g. grpo + none is Dr. GRPO, dr_grpo + group is GRPO and grpo +
    batch is REINFORCE++-baseline: every combination means one thing, and none divides twice.
    """
    if adv_std == "auto":
        return ADVANTAGES[name]
    if name not in CENTRED:  # online_rft: a 0/1 coefficient, not a centred advantage
        if adv_std == "none":
            return ADVANTAGES[name]
        raise ConfigError(f"adv_std={adv_std} divides a centred advantage by a std; advantage {name!r} has no "
                          f"baseline to centre on: use adv_std=auto or none")
    return outcome(partial(rescaled, CENTRED[name], ADV_STD[adv_std]), grouped=ADVANTAGES[name].grouped)
