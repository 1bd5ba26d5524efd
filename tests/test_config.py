import pytest

from mathrl.config import FIELDS, ConfigError, RunConfig, build_config, describe_fields, parse_value
from mathrl.presets import PRESETS


def test_precedence_preset_then_yaml_then_set(tmp_path):
    cfg = build_config("dapo")
    assert cfg.clip_eps_high == 0.28 and cfg.kl_coef == 0.0  # preset over field default
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("clip_eps_high: 0.3\nlr: 1e-4\n")
    cfg = build_config("dapo", yaml_file)
    assert cfg.clip_eps_high == 0.3 and cfg.lr == 1e-4  # YAML over preset
    cfg = build_config("dapo", yaml_file, {"clip_eps_high": "0.5"})
    assert cfg.clip_eps_high == 0.5  # --set over YAML


def test_yaml_algo_selects_preset(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("algo: ppo\n")
    assert build_config(None, yaml_file).advantage == "gae"


def test_finalize_derives_batch_size():
    cfg = build_config("grpo", None, {"prompts_per_step": "3", "group_size": "5"})
    assert cfg.batch_size == 15


@pytest.mark.parametrize("key,value,fragment", [
    ("lr", "-1", "lr must be > 0"),
    ("max_new_tokens", "0", "max_new_tokens"),
    ("group_size", "1", "group_size >= 2"),
    ("kl_estimator", "k9", "kl_estimator must be one of"),
    ("loss_agg", "sum", "loss_agg must be one of"),
    ("minibatches", "3", "must divide"),
    ("not_a_key", "1", "unknown config key"),
    ("lr", "fast", "expects a float"),
])
def test_invalid_values_name_the_problem(key, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        build_config("grpo", None, {key: value})


def test_unknown_algo_lists_choices():
    with pytest.raises(ConfigError, match="choose one of grpo"):
        build_config("ppo2")


def test_malformed_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [1,\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        build_config("grpo", bad)


def test_parse_value_types():
    assert parse_value("lr", "1e-5") == 1e-5
    assert parse_value("dynamic_sampling", "true") is True
    assert parse_value("max_new_tokens", "null") is None
    assert parse_value("task_config", "{digits: 2}") == {"digits": 2}


def test_every_preset_finalizes_and_has_a_docstring():
    for name, preset in PRESETS.items():
        assert preset.__doc__ and "Run: mathrl run --algo" in preset.__doc__, name
        assert set(preset()) <= set(FIELDS), name
        build_config(name)


def test_describe_fields_documents_every_field():
    text = describe_fields()
    for name in FIELDS:
        if name != "batch_size":
            assert f"  {name} " in text
    assert all(len(line.split(None, 2)) == 3 for line in text.splitlines()), "a field lacks its comment"


def test_the_main_jobs_defaults():
    """`mathrl run` with no option: the README's main job (GRPO on arithmetic-add2, 8 x 8 samples)."""
    defaults = {"algo": "grpo", "task": "arithmetic-add2", "model": "smollm2-135m", "seed": 0, "max_steps": 8,
                "prompts_per_step": 8, "group_size": 8, "max_new_tokens": None, "temperature": 1.0, "top_p": 1.0,
                "lr": 1e-5, "kl_coef": 0.04, "kl_estimator": "k3", "clip_eps_low": 0.2, "clip_eps_high": 0.2,
                "ppo_epochs": 1, "checkpoint_every": 0, "eval_every": 4, "format_reward": 0.0,
                "overlong_buffer": 0, "advantage": "grpo", "loss_agg": "seq_mean_token_mean"}
    cfg = RunConfig().finalize()
    assert {name: getattr(cfg, name) for name in defaults} == defaults
    assert cfg.batch_size == 8 * 8  # prompts_per_step x group_size
    assert {name: getattr(build_config(None), name) for name in defaults} == defaults  # no preset changes them
