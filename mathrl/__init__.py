"""mathrl: reinforcement learning with verifiable rewards on math reasoning.

    import mathrl
    cfg = mathrl.build_config("grpo", overrides={"model": "tiny", "max_steps": 2})
    run_dir = mathrl.train(cfg)                         # -> Path of the run directory
    summary, rows = mathrl.evaluate(run_dir / "final", "countdown", limit=8)
    mathrl.get_task("countdown").grade(completion, problem)   # -> Grade

Exports resolve on first use (module __getattr__), so `import mathrl` and the CLI start
without torch. `mathrl.train` and `mathrl.evaluate` are also the names of modules: they stay
modules (`import mathrl.train as T` works) and calling one runs its function
(`mathrl.train.train`, `mathrl.evaluate.evaluate_model`).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType as _ModuleType  # `types` is the name of a submodule

__version__ = "0.1.0"

# name -> (module, attribute)
_EXPORTS = {
    "RunConfig": ("mathrl.config", "RunConfig"),
    "build_config": ("mathrl.config", "build_config"),
    "ConfigError": ("mathrl.config", "ConfigError"),
    "get_task": ("mathrl.tasks", "get_task"),
    "list_tasks": ("mathrl.tasks", "list_tasks"),
    "Task": ("mathrl.tasks", "Task"),
    "grade": ("mathrl.verify", "grade"),
    "grade_batch": ("mathrl.verify", "grade_batch"),
    "equivalent": ("mathrl.verify", "equivalent"),
    "parse_expression": ("mathrl.verify.expression", "parse_expression"),
    "ExpressionError": ("mathrl.verify.expression", "ExpressionError"),
    "Grade": ("mathrl.types", "Grade"),
    "Problem": ("mathrl.types", "Problem"),
    "load_model": ("mathrl.models", "load_model"),
    # registries: add an entry, then name it in the config (advantage=..., policy_loss=...)
    "ADVANTAGES": ("mathrl.advantage", "ADVANTAGES"),
    "POLICY_LOSSES": ("mathrl.loss", "POLICY_LOSSES"),
}
# modules that are also called as functions: module -> the function a call runs
_CALLABLE = {"train": "train", "evaluate": "evaluate_model"}

__all__ = sorted([*_EXPORTS, *_CALLABLE])


class _CallableModule(_ModuleType):
    """A module that runs its main function when called: mathrl.train(cfg)."""

    def __call__(self, *args, **kwargs):
        return getattr(self, _CALLABLE[self.__name__.rpartition(".")[2]])(*args, **kwargs)


class _Package(_ModuleType):
    # the import system sets `mathrl.train` to the submodule when it is first imported, from
    # anywhere: that is where it becomes callable
    def __setattr__(self, name: str, value) -> None:
        if name in _CALLABLE and type(value) is _ModuleType:
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name in _CALLABLE:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
