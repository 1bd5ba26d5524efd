"""Algorithm presets: each is a named set of RunConfig overrides.

A preset is only a starting point: every field stays overridable with `--set key=value`, so
e.g. `--algo grpo --set kl_estimator=k1` is a legitimate ablation. Shared knobs (lr, group
size, budget) are left to RunConfig's defaults so that presets compare on equal terms.

Kept beside config.py rather than inside it so that each preset's docstring (the paper, the
quoted hyperparameters, our deviations) has room without growing config.py past its job.
"""

from __future__ import annotations

from typing import Any, Callable


def grpo() -> dict[str, Any]:
    """GRPO with outcome supervision — Shao et al. 2024, DeepSeekMath §4.1.

    Paper: sample G outputs per question, reward each with the outcome reward, advantage =
    (r - mean(r)) / std(r) within the group for every token (§4.1.2), clipped surrogate with a
    k3 KL estimate to the reference added to the loss (Eq. 3-4), 1/|o| token mean then mean
    over the G outputs. Quoted (§4.2): "The learning rate of the policy model is 1e-6. The KL
    coefficient is 0.04. For each question, we sample 64 outputs. [...] The policy model only
    has a single update following each exploration stage."
    mathrl: beta = 0.04, mu = 1 as quoted; G, lr and batch sizes are the run's (CPU-sized by
    default); the reward is the verifier's 0/1, not a learned reward model.
    Run: mathrl run --algo grpo --task gsm8k --model smollm2-135m
    """
    return dict(advantage="grpo", kl_coef=0.04, kl_estimator="k3", kl_placement="loss",
                loss_agg="seq_mean_token_mean", ppo_epochs=1, minibatches=1)


def grpo_ps() -> dict[str, Any]:
    """GRPO with process supervision — DeepSeekMath §4.1.3.

    Paper: a process reward model scores every reasoning step; step rewards are normalised
    over all steps of the group and each token's advantage is the sum of the normalised rewards
    of the steps ending at or after it.
    mathrl: the step reward is verifiable, not learned: each calculation a line states
    (`a op b = c`, including GSM8K's `<<a*b=c>>` annotations) is checked exactly by the
    verifier (1 right, 0 wrong), and the final answer's outcome reward counts as the last step.
    Run: mathrl run --algo grpo_ps --task gsm8k
    """
    return {**grpo(), "advantage": "process"}


def dr_grpo() -> dict[str, Any]:
    """Dr. GRPO ("GRPO done right") — Liu et al. 2025, Understanding R1-Zero-Like Training.

    Paper: removes the two normalisations it identifies as biases: the division by the
    group's reward std (question-level difficulty bias) and the 1/|o_i| length normalisation
    (which favours long wrong answers); the token sum is divided by a constant instead.
    mathrl: advantage r - mean(r); loss = sum over tokens / max_new_tokens, mean over sequences.
    The KL term is kept at GRPO's setting so that only the normalisations differ; set
    `--set kl_coef=0` for the paper's R1-Zero-style setting without reference model.
    Run: mathrl run --algo dr_grpo --task gsm8k
    """
    return {**grpo(), "advantage": "dr_grpo", "loss_agg": "seq_mean_token_sum_norm"}


def dapo() -> dict[str, Any]:
    """DAPO — Yu et al. 2025, Decoupled Clip and Dynamic sAmpling Policy Optimization.

    Paper: clip-higher ("ε_low = 0.2, ε_high = 0.28"), dynamic sampling (over-sample and
    drop groups whose rewards are all equal, until the batch is full), token-level policy
    gradient loss (token mean over the whole batch), overlong reward shaping (a linear length
    penalty within a buffer before the maximum length) and no KL term ("we exclude the KL
    term").
    mathrl: dynamic sampling resamples the zero-variance groups at most
    `dynamic_sampling_max_tries` times (a cap, so a step never loops forever on CPU); the
    overlong buffer is a quarter of max_new_tokens unless set.
    Run: mathrl run --algo dapo --task gsm8k
    """
    return dict(advantage="grpo", kl_coef=0.0, clip_eps_low=0.2, clip_eps_high=0.28,
                loss_agg="token_mean", dynamic_sampling=True, overlong_buffer=-1, ppo_epochs=1)


def rloo() -> dict[str, Any]:
    """RLOO — Ahmadian et al. 2024, Back to Basics: REINFORCE-style optimization for RLHF.

    Paper: k samples per prompt, each sample's baseline is the mean reward of the other k-1
    (leave-one-out), the KL penalty is part of the (sequence) reward, no value network.
    mathrl: k1 KL to the reference is placed in the reward per token; the policy loss is the
    same clipped surrogate as the other presets (with mu = 1 it equals REINFORCE).
    Run: mathrl run --algo rloo --task gsm8k
    """
    return dict(advantage="rloo", kl_coef=0.04, kl_estimator="k1", kl_placement="reward",
                loss_agg="seq_mean_token_mean", ppo_epochs=1)


def reinforce_pp() -> dict[str, Any]:
    """REINFORCE++ — Hu 2025, a simple and efficient approach for aligning LLMs.

    Paper: no critic; token-level k1 KL penalty in the reward; advantages normalised over the
    whole global batch (not per group), PPO-style clipping.
    mathrl: as described; `--set advantage=reinforce_pp_baseline` selects the variant that
    subtracts the group mean before batch normalisation.
    Run: mathrl run --algo reinforce_pp --task gsm8k
    """
    return dict(advantage="reinforce_pp", kl_coef=0.04, kl_estimator="k1",
                kl_placement="reward", loss_agg="token_mean", ppo_epochs=1)


def ppo() -> dict[str, Any]:
    """PPO — Schulman et al. 2017, as used for LLMs (Ouyang et al. 2022; DeepSeekMath §4.1).

    Paper (DeepSeekMath Eq. 1-2): clipped surrogate with advantages from GAE over a learned
    value function; the KL penalty to the reference is added per token to the reward
    ("r_t = r_φ(q, o_≤t) − β log π_θ/π_ref").
    mathrl: the value function is a linear value head on the shared policy trunk (one forward
    pass, no second model in memory on CPU); the score sits on the last completion token, k1
    KL is subtracted per token, GAE(gamma=1, lambda=0.95), advantages whitened over the batch,
    clipped value loss, 2 epochs over 2 minibatches per rollout.
    Run: mathrl run --algo ppo --task gsm8k
    """
    return dict(advantage="gae", kl_coef=0.04, kl_estimator="k1", kl_placement="reward",
                loss_agg="token_mean", ppo_epochs=2, minibatches=2, gamma=1.0, lam=0.95,
                vf_coef=0.1, value_clip_eps=0.2)


def gspo() -> dict[str, Any]:
    """GSPO — Zheng et al. 2025, Group Sequence Policy Optimization (Qwen3's RL).

    Paper: GRPO's group advantage, but the importance ratio and its clip are per sequence: s_i =
    (π_θ(o_i|q) / π_old(o_i|q))^(1/|o_i|), objective 1/G Σ_i min(s_i A_i, clip(s_i, 1-ε, 1+ε) A_i)
    (Eq. 5-7). §5.1: "each batch of rollout data is partitioned into four minibatches for
    gradient updates" and the "clipping ranges in Equation (5)" are "3e-4 and 4e-4"; Eq. 5
    has no KL term.
    mathrl: the GSPO-token form (Eq. 9-10), whose gradient equals GSPO's for outcome
    advantages, with the 1/|o_i| token mean; 4 minibatches of one epoch, so that the second to
    fourth see a ratio that moved; kl_coef = 0.
    Run: mathrl run --algo gspo --task gsm8k
    """
    return dict(advantage="grpo", policy_loss="gspo", clip_eps_low=3e-4, clip_eps_high=4e-4, kl_coef=0.0,
                loss_agg="seq_mean_token_mean", ppo_epochs=1, minibatches=4)


def cispo() -> dict[str, Any]:
    """CISPO — MiniMax 2025, MiniMax-M1 §3.1 (Clipped IS-weight Policy Optimization).

    Paper: "Rather than clipping the token updates as in PPO/GRPO, we instead clip the
    importance sampling weight": -sg(clip(r_t, 1-ε_low, 1+ε_high)) Â_t log π_θ, with GRPO's
    group advantage and the token-level loss 1/Σ|o_i| (Eq. 4-5). "we did not impose a lower
    bound on the IS weight by setting ε_low to a large value; instead, we only tuned ε_high".
    "There is no KL penalty term in CISPO"; it uses DAPO's dynamic sampling and length penalty.
    mathrl: ε_low = 1 (the weight is never bounded below); the paper prints no ε_high, we take
    DAPO's clip-higher 0.28 (also Trinity-RFT's CISPO default); DAPO's dynamic sampling and
    overlong penalty as in the dapo preset; 4 minibatches of one epoch so that the IS weight
    departs from 1 (on-policy with one update it is REINFORCE).
    Run: mathrl run --algo cispo --task gsm8k
    """
    return {**dapo(), "policy_loss": "cispo", "clip_eps_low": 1.0, "clip_eps_high": 0.28, "minibatches": 4}


def reinforce() -> dict[str, Any]:
    """On-policy REINFORCE — Williams 1992, as in nanochat's RL (Karpathy 2025, scripts/chat_rl.py).

    nanochat: "1) Delete trust region, so there is no KL regularization to a reference model
    2) We are on policy, so there's no need for PPO ratio+clip. 3) We use DAPO style
    normalization that is token-level, not sequence-level. 4) Instead of z-score normalization
    (r - mu)/sigma, only use (r - mu) as the advantage."
    mathrl: exactly that: loss -A log π_θ (no ratio, no clip), A = r - mean of the group
    (dr_grpo's estimator), token mean over the batch, no KL term, one update per rollout.
    Run: mathrl run --algo reinforce --task gsm8k
    """
    return dict(advantage="dr_grpo", policy_loss="reinforce", kl_coef=0.0, loss_agg="token_mean", ppo_epochs=1)


def online_rft() -> dict[str, Any]:
    """Online rejection-sampling fine-tuning — DeepSeekMath §5.2.1, Eq. 10-11.

    Paper: fine-tune on the policy's own sampled outputs that are correct; in the unified
    paradigm its gradient coefficient is 1 for a correct output and 0 otherwise, with outputs
    sampled from the current policy (online).
    mathrl: advantage = 1 for correct, 0 for wrong; no KL term; mu = 1 (so the clipped
    surrogate reduces to the plain likelihood gradient on correct samples).
    Run: mathrl run --algo online_rft --task gsm8k
    """
    return dict(advantage="online_rft", kl_coef=0.0, loss_agg="seq_mean_token_mean", ppo_epochs=1)


def offline_rft() -> dict[str, Any]:
    """Rejection-sampling fine-tuning (RFT) — DeepSeekMath §5.2.1, Table 10, Eq. 10.

    Paper: "RFT further fine-tunes the SFT model on the filtered outputs sampled from the SFT
    model based on SFT questions. RFT filters the outputs based on the correctness of their
    answers." (Appendix A.1: RFT "first samples multiple outputs from the supervised
    fine-tuned LLMs for each question, and then trains LLMs on the sampled outputs with the
    correct answer"; gradient coefficient I(o) = 1 if correct, else 0, outputs o ~ pi_sft, a
    1/|o| token mean.) It is the offline counterpart of online_rft, which samples from the
    current policy; the paper's Figure 5 compares the two.
    mathrl: the run's initial model is pi_sft (start from an SFT run's final/ folder to match
    the paper); it stays frozen as the reference and samples every step, with the same
    prompts_per_step x group_size samples as the other presets so that budgets compare. The
    paper samples its whole dataset once beforehand; sampling it step by step from the frozen
    model draws from the same distribution. Loss: -I(o) log pi_theta (no ratio, no clip), i.e.
    SFT on the correct samples; "correct" is reward > 0 as in online_rft (keep format_reward 0).
    Run: mathrl run --algo offline_rft --task gsm8k --model runs/<sft run>/final
    """
    return dict(advantage="online_rft", rollout_from="reference", policy_loss="reinforce", kl_coef=0.0,
                loss_agg="seq_mean_token_mean", ppo_epochs=1)


def sft() -> dict[str, Any]:
    """Supervised fine-tuning on the task's worked solutions — DeepSeekMath §5.2.1, Eq. 6.

    Paper: maximise the likelihood of the human-written solution (gradient coefficient 1 on
    every SFT token); the baseline of the unified paradigm and the warm start of RL.
    mathrl: per step, prompts_per_step * group_size solutions (task.format_solution) are
    trained on with a token-mean cross entropy; no sampling, no reward (rewards and eval are
    still measured for comparison).
    Run: mathrl run --algo sft --task gsm8k
    """
    return dict(loss="sft", advantage="none", kl_coef=0.0, group_size=1, prompts_per_step=16)


PRESETS: dict[str, Callable[[], dict[str, Any]]] = {
    "grpo": grpo, "grpo_ps": grpo_ps, "dr_grpo": dr_grpo, "dapo": dapo, "rloo": rloo,
    "reinforce_pp": reinforce_pp, "ppo": ppo, "online_rft": online_rft, "offline_rft": offline_rft,
    "sft": sft, "gspo": gspo, "cispo": cispo, "reinforce": reinforce,
}

