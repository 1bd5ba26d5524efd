"""The Recipe: what each algorithm needs, decided once from the config, read by every consumer."""

import json

import pytest
import torch

from conftest import metric_rows, write_digit_task
from mathrl.advantage import ADVANTAGES, LIKELIHOOD
from mathrl.config import ConfigError, build_config
from mathrl.loss import KL_ESTIMATORS, POLICY_LOSSES
from mathrl.presets import PRESETS
from mathrl.recipe import Recipe

QUICK = {"model": "tiny", "prompts_per_step": "2", "group_size": "4", "max_new_tokens": "8", "eval_limit": "2",
        "eval_every": "0", "lr": "1e-3", "samples_every": "0", "format_reward": "0.5", "save_final": "false"}


def recipe(algo, **overrides):
    return Recipe.from_config(build_config(algo, None, overrides))


def test_each_preset_resolves_to_what_its_paper_needs():
    grpo = recipe("grpo")
    assert grpo.kl_in_loss and not grpo.kl_in_reward and grpo.reference_pass and grpo.needs_reference
    assert grpo.kl is KL_ESTIMATORS["k3"] and grpo.kl_coef == 0.04 and not grpo.needs_old_pass
    assert grpo.advantage is ADVANTAGES["grpo"] and grpo.policy_loss is POLICY_LOSSES["clip"]
    ppo = recipe("ppo")  # GAE over a value head, KL in the reward, pi_old for 2 epochs x 2 minibatches
    assert ppo.learns_value and ppo.needs_old_pass and ppo.kl_in_reward and not ppo.kl_in_loss
    assert ppo.advantage is ADVANTAGES["gae"] and ppo.token_weighted
    assert ppo.passes.forward == 2 and ppo.passes.train == 2
    # the value head alone needs the V_old pass, even with one update per rollout
    assert recipe("ppo", ppo_epochs=1, minibatches=1).needs_old_pass
    dapo = recipe("dapo")  # "we exclude the KL term": no reference model at all
    assert not dapo.needs_reference and not dapo.reference_pass and dapo.kl is None and dapo.kl_coef == 0
    assert recipe("dapo", eval_kl=True).needs_reference and not recipe("dapo", eval_kl=True).reference_pass
    assert recipe("grpo_ps").advantage is ADVANTAGES["process"] and not recipe("grpo_ps").learns_value
    assert recipe("rloo").kl_in_reward and recipe("rloo").kl is KL_ESTIMATORS["k1"]
    assert not recipe("rloo").kl_grad_at_reference and recipe("grpo", kl_estimator="k1").kl_grad_at_reference


def test_sft_needs_no_sampling_no_reference_and_trains_the_likelihood():
    sft = recipe("sft", kl_coef=0.1)  # a stray beta cannot build a reference for SFT
    assert sft.sft and not sft.needs_reference and not sft.reference_pass and not sft.needs_old_pass
    assert sft.advantage is LIKELIHOOD and sft.kl is None and sft.policy_loss is POLICY_LOSSES["reinforce"]
    assert sft.passes.generate is False and sft.passes.forward == 0
    logp = torch.tensor([[-0.5, -2.0]])  # (1, 2)
    loss, _, _ = sft.policy_loss(logp, logp, torch.ones(1, 2), torch.ones(1, 2), 0.2, 0.2)
    assert torch.equal(loss, -logp)  # DeepSeekMath Eq. 6 with gradient coefficient 1, bit for bit


def test_unknown_names_fail_with_the_choices():
    with pytest.raises(ConfigError, match="unknown advantage 'nope'.*grpo"):
        recipe("grpo", advantage="nope")
    with pytest.raises(ConfigError, match="unknown policy_loss 'nope'.*clip"):
        recipe("grpo", policy_loss="nope")
    recipe("sft", advantage="nope")  # SFT has no advantage: the name is never looked up


@pytest.mark.parametrize("algo", sorted(PRESETS))
def test_passes_count_what_the_trainer_counts(algo):
    """bench.phase_flops and compare's estimate come from the same Passes as the trainer."""
    from mathrl.bench import phase_flops

    cfg = build_config(algo, None, {"prompts_per_step": 2, "group_size": 4})
    r = Recipe.from_config(cfg)
    step = {"tokens/prompt": 8 * 20, "tokens/generated": 100, "tokens/trained": (8 * 20 + 100) * cfg.ppo_epochs}
    n = 1000
    phases = phase_flops(n, step, cfg, executed=False)
    assert sum(phases.values()) == pytest.approx(r.passes.flops(n, 8 * 20, 100, 8 * 20 + 100))
    # pi_old's log-probs also run for the KL in the reward when no pi_old pass ran (RLOO, REINFORCE++)
    assert (phases["old_logprobs"] > 0) == (r.needs_old_pass or r.kl_in_reward)
    assert (phases["reference"] > 0) == r.reference_pass


@pytest.mark.parametrize("algo", ["ppo", "sft", "rloo"])
def test_trainer_flops_match_the_recipe_passes(tmp_path, algo):
    """The cases where the copies of the rule had drifted: PPO's V_old pass at mu = 1 (the bench
    left it out), SFT's step without sampling, RLOO's pi_old pass for the KL in the reward (the
    trainer ran it uncounted)."""
    from mathrl.run_state import build_run_state
    from mathrl.train import train_step

    tasks = write_digit_task(tmp_path)
    cfg = build_config(algo, None, {**QUICK, "task": "digit", "tasks_dir": str(tasks), "max_steps": "1",
                                    "ppo_epochs": "1", "minibatches": "1", "output": str(tmp_path / "run")})
    state = build_run_state(cfg)
    state.policy_is_reference = False  # a step after the first update: the reference pass runs (as in the bench)
    train_step(state)
    step = state.meter.step_metrics()
    from mathrl.bench import phase_flops

    assert step["flops/step"] == pytest.approx(sum(phase_flops(state.n_params, step, cfg, executed=False).values()))


def test_no_reference_pass_while_the_policy_is_the_reference(tmp_path):
    """Step 0 (and right after a reset): pi_ref = pi_old, so the loss takes the old log-probs as
    the reference's (UpdateInputs.ref_is_old) and the reference never runs nor counts FLOPs."""
    from contextlib import contextmanager

    from mathrl.bench import phase_flops
    from mathrl.run_state import build_run_state
    from mathrl.train import train_step

    tasks = write_digit_task(tmp_path)
    cfg = build_config("grpo", None, {**QUICK, "task": "digit", "tasks_dir": str(tasks), "max_steps": "1",
                                      "output": str(tmp_path / "run")})
    state = build_run_state(cfg)

    @contextmanager
    def no_reference():
        raise AssertionError("the reference ran although the policy is the reference")
        yield

    state.reference = no_reference
    assert state.policy_is_reference
    train_step(state)
    step = state.meter.step_metrics()
    phases = phase_flops(state.n_params, step, cfg, executed=False)
    assert step["flops/step"] == pytest.approx(sum(phases.values()) - phases["reference"])


def test_iterative_rl_resets_the_reference_to_the_policy(tmp_path):
    """DeepSeekMath Alg. 1: every ref_reset_every steps the reference becomes the policy (train()
    does it, before the checkpoint that stores the new reference)."""
    from mathrl.checkpoint import load_latest
    from mathrl.models import load_model
    from mathrl.train import train

    tasks = write_digit_task(tmp_path)
    cfg = build_config("grpo", None, {**QUICK, "task": "digit", "tasks_dir": str(tasks), "max_steps": "2",
                                      "ref_reset_every": "2", "output": str(tmp_path / "run")})
    run = train(cfg, progress=False)
    _, saved = load_latest(run / "checkpoints")
    initial = load_model("tiny", seed=0)[0].state_dict()
    assert any(not torch.equal(saved["model"][k], initial[k]) for k in initial)  # the policy moved
    ref = saved["ref_model"]  # under CPU mixed precision its matmul weights are the policy's bf16 casts
    assert all(torch.equal(ref[k], saved["model"][k].to(ref[k].dtype)) for k in saved["model"])
    rows = metric_rows(run)
    assert [r["step"] for r in rows if "loss/policy" in r] == [1, 2]


def test_a_run_made_before_a_new_field_is_still_resumable_by_compare(tmp_path):
    """Adding a config field (policy_loss, ...) whose default keeps the old behaviour must not
    make `mathrl compare` refuse to resume the runs made before it; another value still does."""
    from mathrl.compare import PlannedRun, SuiteError, check_same_config
    from mathrl.results import to_json

    cfg = build_config("grpo", None, {"output": str(tmp_path / "run")})
    (tmp_path / "run").mkdir()
    old = json.loads(to_json(cfg.to_dict()))
    del old["policy_loss"]  # written before the field existed
    (tmp_path / "run" / "config.json").write_text(json.dumps(old))
    check_same_config(PlannedRun("run", tmp_path / "run", cfg, "grpo"))
    changed = build_config("grpo", None, {"policy_loss": "reinforce"})
    with pytest.raises(SuiteError, match="policy_loss: 'clip' -> 'reinforce'"):
        check_same_config(PlannedRun("run", tmp_path / "run", changed, "grpo"))
