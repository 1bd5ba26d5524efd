"""One flat, typed run configuration.

Precedence (lowest first): field defaults < the `--algo` preset (mathrl/presets.py) < a YAML
file (`--config`) < `--set key=value` overrides. `finalize()` derives and validates once; the
result is printed once and written to `<run>/config.json`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mathrl.advantage import ADV_STD, ADVANTAGES
from mathrl.loss import AGGREGATIONS, KL_ESTIMATORS
from mathrl.presets import PRESETS


class ConfigError(ValueError):
    """An impossible or unknown configuration value; the message says how to fix it."""


@dataclass
class RunConfig:
    # ---- what to train -------------------------------------------------------------------
    algo: str = "grpo"  # preset name (mathrl/presets.py): grpo, ppo, dr_grpo, dapo, rloo, ...
    # The defaults are the README's main job: a real model whose arithmetic (not its answer
    # format) visibly improves in ~10 minutes on CPU. arithmetic-add2 is graded by the last
    # number, so only right sums earn reward (results/reasoning); `tiny` never earns any.
    task: str = "arithmetic-add2"  # task name (tasks/*.yaml or --tasks-dir) or path to a task YAML
    task_config: dict = field(default_factory=dict)  # overrides of the task's source config
    model: str = "smollm2-135m"  # tiny | smollm2-135m | local folder | Hub id
    data_dir: str | None = None  # local data for Hub tasks (--data); else $MATHRL_DATA_DIR
    tasks_dir: str | None = None  # extra directory of user task YAMLs (--tasks-dir)
    output: str | None = None  # run directory; default runs/<algo>-<task>-<model>-s<seed>-<time>
    seed: int = 0  # seeds model init (tiny), prompt order, sampling

    # ---- budget ----------------------------------------------------------------------------
    max_steps: int = 8  # optimizer rollouts (one rollout batch = one step)
    prompts_per_step: int = 8  # B: distinct prompts per step over all processes (a multiple of their number)
    group_size: int = 8  # G: completions sampled per prompt (4 left most groups without reward variance)
    train_limit: int | None = None  # use only the first N training problems (after shuffle)

    # ---- rollout ---------------------------------------------------------------------------
    rollout: str = "hf"  # generation backend: hf (transformers generate) | vllm
    rollout_from: str = "policy"  # policy (online RL) | reference (offline RFT: the frozen initial model samples)
    max_new_tokens: int | None = None  # completion limit; None: the task's default
    temperature: float = 1.0  # sampling temperature (log-probs are computed at it, too)
    top_p: float = 1.0  # nucleus sampling
    dynamic_sampling: bool = False  # DAPO: resample until enough groups have reward variance
    dynamic_sampling_max_tries: int = 3  # cap on extra rollouts per step for dynamic sampling
    mask_truncated: bool = False  # drop truncated completions from the loss (DAPO overlong filter)

    # ---- reward ----------------------------------------------------------------------------
    format_reward: float = 0.0  # added when an answer was extracted (explicit shaping, default off)
    overlong_buffer: int = 0  # DAPO soft overlong punishment: length window before the limit
    overlong_penalty: float = 1.0  # DAPO: max penalty reached at the limit

    # ---- advantage -------------------------------------------------------------------------
    advantage: str = "grpo"  # estimator (mathrl/advantage.py ADVANTAGES): grpo, dr_grpo, rloo, gae, process, ...
    adv_std: str = "auto"  # auto (as the estimator's paper) | none | group | batch: its baseline divided by nothing, the group's reward std or the batch's advantage std
    gamma: float = 1.0  # GAE discount (PPO)
    lam: float = 0.95  # GAE lambda (PPO)

    # ---- loss ------------------------------------------------------------------------------
    loss: str = "policy_gradient"  # policy_gradient (all RL algorithms) | sft
    rollout_is: str = "none"  # sampler/trainer mismatch correction (needs a rollout that returns log-probs: the built-in decoder, vllm): none | truncate (TIS) | mask (MIS)
    rollout_is_cap: float = 2.0  # C: truncate caps the ratio at C; mask drops tokens whose ratio leaves [1/C, C]
    policy_loss: str = "clip"  # policy loss (mathrl/loss.py POLICY_LOSSES): clip | gspo | cispo | reinforce (-A log p, no ratio); SFT is always -log p. Logs loss/clip_frac_low, _high
    clip_eps_low: float = 0.2  # PPO ratio clip, lower side (1 - eps_low); 1: no lower bound (CISPO)
    clip_eps_high: float = 0.2  # upper side (1 + eps_high); DAPO's clip-higher raises it
    kl_coef: float = 0.04  # beta; 0 disables the reference model entirely
    kl_estimator: str = "k3"  # k1 | k2 | k3 (Schulman's approximators)
    kl_placement: str = "loss"  # loss (GRPO) | reward (PPO, RLOO: per-token penalty)
    loss_agg: str = "seq_mean_token_mean"  # seq_mean_token_mean | token_mean | seq_mean_token_sum_norm
    entropy_coef: float = 0.0  # entropy bonus (subtracted from the loss); entropy/mean is logged whatever its value
    vf_coef: float = 0.1  # PPO value loss weight
    value_clip_eps: float = 0.2  # PPO clipped value loss range

    # ---- optimisation ----------------------------------------------------------------------
    lr: float = 1e-5  # AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    warmup_steps: int = 0  # linear warm-up, then constant
    max_grad_norm: float = 1.0  # gradient clipping
    ppo_epochs: int = 1  # mu: optimisation passes over each rollout batch
    target_kl: float = 0.0  # stop the mu epochs once kl/old_new (logged: mean (r-1) - log r) passes it (cleanrl); 0: never
    minibatches: int = 1  # minibatches per pass (one optimizer step each)
    micro_batch_size: int = 0  # rows per forward/backward chunk (memory knob, not semantics); 0: auto, by the model's size (engine.host.choose_micro_batch)
    ref_reset_every: int = 0  # iterative RL: reference <- policy every N steps (0: never)
    lora_rank: int = 0  # >0 trains LoRA adapters (peft); the reference is the adapter-free base
    lora_alpha: float | None = None  # LoRA alpha; None: 2 * rank

    # ---- evaluation, logging, checkpoints --------------------------------------------------
    eval_every: int = 4  # greedy eval on the held-out subset every N steps (0: only at start/end)
    eval_limit: int = 64  # size of the fixed held-out eval subset
    eval_split: str = "test"  # split used for evaluation
    eval_samples: int = 0  # every eval: samples per problem at `temperature` for pass@k / maj@k (0: greedy only)
    eval_kl: bool | None = None  # KL drift at eval; None: when a reference exists anyway (kl_coef > 0 or LoRA), true: keep a frozen copy to measure it
    checkpoint_every: int = 0  # save a resumable checkpoint every N steps (0: only at the end)
    keep_checkpoints: int = 2  # how many checkpoints to keep
    save_final: bool = True  # write <run>/final/ as a plain Hugging Face model folder
    samples_every: int = 10  # write rollout samples to samples/ every N steps
    report_to: str = "none"  # experiment trackers beside metrics.jsonl: none | tensorboard | wandb | trackio (comma-separated for several; mathrl/tracking.py)

    # ---- hardware --------------------------------------------------------------------------
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16; auto: bfloat16 on a CPU with bf16 units (faster passes, results/bench), else float32. CPU 16-bit = fp32 weights + autocast
    threads: int = 0  # torch CPU threads (0: torch default)

    # ---- derived in finalize() (not user-set) ----------------------------------------------
    batch_size: int = 0  # N = prompts_per_step * group_size

    def finalize(self) -> "RunConfig":
        """Derive values and reject impossible ones with messages that say how to fix them."""
        _check(self.max_steps >= 1, "max_steps must be >= 1")
        _check(self.prompts_per_step >= 1, "prompts_per_step must be >= 1")
        _check(self.group_size >= 1, "group_size must be >= 1")
        _check(self.lr > 0, f"lr must be > 0 (got {self.lr})")
        _check(self.max_new_tokens is None or self.max_new_tokens >= 1,
               f"max_new_tokens must be >= 1 (got {self.max_new_tokens})")
        _check(self.temperature > 0, "temperature must be > 0 (sampling is required for RL)")
        _check(0 < self.top_p <= 1, "top_p must be in (0, 1]")
        _check(all(math.isfinite(v) for v in (self.lr, self.kl_coef, self.format_reward, self.overlong_penalty,
                                              self.entropy_coef, self.vf_coef, self.max_grad_norm, self.temperature)),
               "lr, kl_coef, format_reward, overlong_penalty, entropy_coef, vf_coef, max_grad_norm and temperature "
               "must be finite numbers")
        _check(self.kl_coef >= 0, "kl_coef must be >= 0")
        _check(self.target_kl >= 0 and math.isfinite(self.target_kl), "target_kl must be >= 0 (0: no early stop)")
        _check(self.max_grad_norm > 0, "max_grad_norm must be > 0 (clipping to 0 would freeze training)")
        _check(self.weight_decay >= 0, "weight_decay must be >= 0")
        _check(min(self.warmup_steps, self.checkpoint_every, self.ref_reset_every, self.samples_every) >= 0,
               "warmup_steps, checkpoint_every, ref_reset_every and samples_every must be >= 0")
        _check(0 <= self.clip_eps_low <= 1 and self.clip_eps_high >= 0, "clip_eps_low in [0,1], clip_eps_high >= 0")
        _check(self.ppo_epochs >= 1 and self.minibatches >= 1, "ppo_epochs and minibatches must be >= 1")
        _check(self.micro_batch_size >= 0, "micro_batch_size must be >= 0 (0: auto)")
        _check(self.eval_limit >= 0 and self.eval_every >= 0, "eval_limit and eval_every must be >= 0")
        _check(self.eval_samples >= 0, "eval_samples must be >= 0")
        _check(self.eval_kl in (None, True, False), "eval_kl must be true, false or null (auto)")
        _check(self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1")
        _check(self.rollout_is_cap > 1, "rollout_is_cap must be > 1 (the ratio of a sampler that agrees is 1)")
        _one_of("kl_estimator", self.kl_estimator, tuple(KL_ESTIMATORS))
        _one_of("kl_placement", self.kl_placement, ("loss", "reward"))
        _one_of("loss_agg", self.loss_agg, tuple(AGGREGATIONS))
        _one_of("adv_std", self.adv_std, ("auto", *ADV_STD))
        _one_of("loss", self.loss, ("policy_gradient", "sft"))
        _one_of("rollout", self.rollout, ("hf", "vllm"))
        _one_of("rollout_from", self.rollout_from, ("policy", "reference"))
        _one_of("device", self.device, ("auto", "cpu", "cuda"))
        for name in self.report_to.split(","):
            _one_of("report_to", name.strip(), REPORT_TO)
        _one_of("dtype", self.dtype, ("auto", "float32", "bfloat16", "float16"))
        group_based = self.advantage in ADVANTAGES and ADVANTAGES[self.advantage].grouped
        _check(not (group_based and self.loss == "policy_gradient" and self.group_size < 2),
               f"advantage '{self.advantage}' compares samples within a group: set group_size >= 2")
        _check(self.batch_size == 0 or self.batch_size == self.prompts_per_step * self.group_size,
               "batch_size is derived (prompts_per_step * group_size); do not set it")
        self.batch_size = self.prompts_per_step * self.group_size
        _check(self.batch_size % self.minibatches == 0,
               f"minibatches ({self.minibatches}) must divide the batch size ({self.batch_size})")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Experiment trackers (accelerate's names); `none` writes nothing beyond the run directory.
REPORT_TO = ("none", "tensorboard", "wandb", "trackio")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _one_of(name: str, value: Any, allowed: tuple) -> None:
    _check(value in allowed, f"{name} must be one of {', '.join(map(str, allowed))} (got {value!r})")


FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def parse_value(key: str, text: str) -> Any:
    """Parse a `--set key=value` string into the field's type (YAML scalars: 1e-5, true, null)."""
    import yaml

    if key not in FIELDS:
        close = [k for k in FIELDS if key.split("_")[0] in k]
        hint = f" (did you mean {', '.join(close[:4])}?)" if close else ""
        raise ConfigError(f"unknown config key '{key}'{hint}; see `mathrl run --help-config`")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot parse value for {key}: {text!r} ({e.__class__.__name__})") from None
    return _coerce(key, value)


_SCALARS = {"int": int, "float": float, "str": str, "bool": bool}


def _coerce(key: str, value: Any) -> Any:
    default = FIELDS[key].default
    if value is None and default is not None and default is not dataclasses.MISSING:  # only optional fields
        raise ConfigError(f"{key} cannot be null; it expects a {type(default).__name__} (default {default!r})")
    if value is None or isinstance(default, bool):
        return value
    if default is None:  # an optional field: its annotation ("int | None") names the type
        expected = _SCALARS.get(str(FIELDS[key].type).split("|")[0].strip())
        if expected is None or (expected is bool and isinstance(value, bool)):
            return value
    else:
        expected = type(default) if default is not dataclasses.MISSING else dict
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is float and isinstance(value, str):  # PyYAML reads "1e-5" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if expected is str and isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, expected):
        raise ConfigError(f"{key} expects a {expected.__name__} (got {value!r})")
    return value


def build_config(algo: str | None = None, yaml_path: str | Path | None = None,
                 overrides: dict[str, Any] | None = None) -> RunConfig:
    """Field defaults < preset < YAML < overrides, then finalize().

    The preset is that of `algo` (from --algo, else the YAML's `algo:`, else grpo).
    """
    from_yaml = _read_yaml(Path(yaml_path)) if yaml_path is not None else {}
    name = algo or from_yaml.get("algo") or "grpo"
    values: dict[str, Any] = {**preset_overrides(name), **from_yaml, "algo": name}
    for key, value in (overrides or {}).items():
        if key not in FIELDS or isinstance(value, str):
            values[key] = parse_value(key, str(value))
        else:
            values[key] = _coerce(key, value)
    return RunConfig(**values).finalize()


def preset_overrides(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown algorithm '{name}'; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: malformed YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    unknown = [k for k in data if k not in FIELDS]
    if unknown:
        names = (k if isinstance(k, str) and k else repr(k) for k in unknown)  # YAML keys may be null, '', 1
        raise ConfigError(f"{path}: unknown config key(s) {', '.join(names)}")
    return {k: _coerce(k, v) for k, v in data.items()}


def describe_fields() -> str:
    """Every field with its default and comment, read from this file (one source of truth)."""
    import inspect

    comments: dict[str, str] = {}
    for line in inspect.getsource(RunConfig).splitlines():
        head, _, comment = line.strip().partition("  # ")
        name = head.split(":")[0]
        if name in FIELDS and comment:
            comments[name] = comment
    rows = [f"  {n:<28} {json.dumps(FIELDS[n].default if FIELDS[n].default is not dataclasses.MISSING else {})!s:<22} {comments.get(n, '')}"
            for n in FIELDS if n != "batch_size"]
    return "\n".join(rows)
