"""`mathrl bench`: one RL step of the real trainer, timed phase by phase against a roofline.

The step is `train.train_step` on a RunState built from an ordinary config (GRPO preset,
`prompts` x `samples` completions of at most `new_tokens` tokens, beta = kl_coef, mu =
ppo_epochs), so the bench measures exactly what `mathrl run` executes. The yardstick is
measured in the same process: this machine's matmul peak in the model's compute dtype (a
torch.matmul loop; bf16 under CPU mixed precision), sampled right after every timed step so
that the step and its peak see the same machine load.

    roofline_s = step FLOPs / peak FLOP/s        ratio = step seconds / roofline_s

Two FLOP counts, both with mathrl/compute.py's formulas (2N per token forward, 6N per token
trained, real tokens, attention-over-context omitted, so either roofline is a lower bound):
  * counted: what the trainer logs as flops/step; every row's prompt counted, as if each of
    the G samples of a group had its own. Fixed by the batch, so before/after comparable.
  * executed: the prompt of a group once per chunk that holds it, as the prefix-shared
    rollout and log-prob passes run it. The efficiency of the code is step s / this roofline.
Two clocks: wall seconds (the issue's measure; valid on an otherwise idle machine) and
process CPU seconds against a CPU-time peak (robust when other jobs share the cores, since
time spent descheduled counts in neither; torch's spinning threads do count, so use it with
threads=1). Peak memory is the process's max RSS (model, reference copy, optimizer, activations).
"""

from __future__ import annotations

import math
import resource
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import torch

from mathrl.compute import forward_flops, generation_flops, train_flops
from mathrl.models import AUTOCAST_ATTR
from mathrl.recipe import Recipe

PHASES = ("rollout", "reward", "reference", "old_logprobs", "update")


def matmul_peak(size: int = 1024, seconds: float = 1.0, dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """FLOP/s of back-to-back (size x size) @ (size x size) matmuls in `dtype` (the one the
    model's matmuls run in: bf16 under CPU mixed precision), by wall and by CPU time: the
    best repeat of the loop (peak = what the machine can do, not its average)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.matmul(a, b)  # first call: thread pool and allocator warm-up
    flops, best, start = 2.0 * size ** 3, {"wall": 0.0, "cpu": 0.0}, time.perf_counter()
    while time.perf_counter() - start < seconds:
        w0, c0 = time.perf_counter(), time.process_time()
        torch.matmul(a, b)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        best["wall"] = max(best["wall"], flops / wall)
        best["cpu"] = max(best["cpu"], flops / cpu) if cpu > 0 else best["cpu"]
    return best


def chunk_prompt_passes(rows: int, group_size: int, chunk: int) -> int:
    """How many times a prefix-shared pass over `rows` rows in chunks of `chunk` runs a
    prompt: once per (chunk, group) pair."""
    return len({(r // chunk, r // group_size) for r in range(rows)})


def phase_flops(n_params: int, step: dict[str, float], cfg, executed: bool) -> dict[str, float]:
    """compute.py FLOPs of each phase from the step's token counts; `executed` counts a
    group's prompt once per chunk (prefix sharing), else once per row (the trainer's count)."""
    rows, G = cfg.batch_size, cfg.group_size
    prompt, generated = step["tokens/prompt"], step["tokens/generated"]
    per_row_prompt = prompt / rows
    completion = step["tokens/trained"] / cfg.ppo_epochs - prompt  # completion tokens of one pass
    gen_prompt, pass_prompt = prompt, prompt
    if executed and G > 1:
        groups = chunk_prompt_passes(rows, G, cfg.batch_size)
        gen_prompt = groups * (per_row_prompt - 1) + rows  # shared prefill + each row's last prompt token
        pass_prompt = chunk_prompt_passes(rows, G, cfg.micro_batch_size) * per_row_prompt
    one_pass = pass_prompt + completion
    recipe = Recipe.from_config(cfg)  # the passes the trainer runs, as the trainer decides them
    return {"rollout": generation_flops(n_params, gen_prompt, generated) if recipe.passes.generate else 0.0,
            "reward": 0.0,
            "reference": forward_flops(n_params, one_pass) if recipe.reference_pass else 0.0,
            "old_logprobs": forward_flops(n_params, one_pass) if recipe.needs_old_pass or recipe.kl_in_reward else 0.0,
            "update": train_flops(n_params, one_pass) * recipe.passes.train}


def bench_step(model: str = "smollm2-135m", prompts: int = 2, samples: int = 8, new_tokens: int = 32,
               repeats: int = 3, warmup: int = 1, task: str = "arithmetic", kl_coef: float = 0.04,
               ppo_epochs: int = 1, threads: int = 0, seed: int = 0, overrides: dict[str, Any] | None = None,
               log=print) -> dict[str, Any]:
    """Time `warmup` + `repeats` training steps; return per-step records and their medians."""
    from mathrl.config import build_config
    from mathrl.run_state import build_run_state
    from mathrl.train import train_step

    with tempfile.TemporaryDirectory(prefix="mathrl-bench-") as out:
        cfg = build_config("grpo", None, {
            "model": model, "task": task, "prompts_per_step": prompts, "group_size": samples,
            "max_new_tokens": new_tokens, "kl_coef": kl_coef, "ppo_epochs": ppo_epochs, "threads": threads,
            "seed": seed, "eval_limit": 0, "eval_every": 0, "samples_every": 0, "save_final": False,
            "max_steps": warmup + repeats, "output": out, **(overrides or {})})
        state = build_run_state(cfg)
        cfg = replace(cfg, micro_batch_size=state.micro_batch_size)  # as resolved: the chunks the passes run
        cpu_by_phase = _count_cpu_per_phase(state.meter)
        steps = []
        for i in range(warmup + repeats):
            cpu_by_phase.clear()
            # The bench's task may earn no reward (SmolLM2 on `arithmetic`): the trainer then
            # skips the optimizer step while the policy is the reference (update.carries_signal).
            # An update costs the same whatever the advantages are, so time it on every step.
            state.policy_is_reference = False
            cpu0 = time.process_time()
            train_step(state)
            step = {**state.meter.step_metrics(), "cpu_s": time.process_time() - cpu0}
            if i < warmup:  # first step: lazy initialisation, allocator growth
                continue
            peak = matmul_peak(dtype=getattr(state.policy_for_generation(), AUTOCAST_ATTR, None) or torch.float32)
            steps.append(step_record(step, dict(cpu_by_phase), peak, state.n_params, cfg))
            log(f"step {i + 1 - warmup}/{repeats}: {step['time/step_s']:.2f} s wall, {step['cpu_s']:.2f} s CPU, "
                f"peak {peak['wall'] / 1e9:.0f} GFLOP/s")
    return {"config": {"model": model, "prompts": prompts, "samples": samples, "new_tokens": new_tokens,
                       "kl_coef": kl_coef, "ppo_epochs": ppo_epochs, "task": task, "repeats": repeats,
                       "warmup": warmup, "threads": torch.get_num_threads(), "seed": seed,
                       "compute_dtype": str(getattr(state.policy_for_generation(), AUTOCAST_ATTR, None)
                                            or next(state.model.parameters()).dtype).removeprefix("torch."),
                       "micro_batch_size": cfg.micro_batch_size, "n_params_flop": state.n_params,
                       **(overrides or {})},
            "median": _medians(steps),
            "steps": steps,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "torch": torch.__version__}


def _count_cpu_per_phase(meter) -> dict[str, float]:
    """Make meter.phase() also add the phase's process CPU seconds to the returned dict."""
    cpu: dict[str, float] = {}
    wall_phase = meter.phase

    @contextmanager
    def phase(name: str):
        start = time.process_time()
        with wall_phase(name):
            yield
        cpu[name] = cpu.get(name, 0.0) + time.process_time() - start

    meter.phase = phase
    return cpu


def step_record(step: dict[str, float], cpu: dict[str, float], peak: dict[str, float], n_params: int,
                cfg) -> dict[str, Any]:
    counted, executed = phase_flops(n_params, step, cfg, False), phase_flops(n_params, step, cfg, True)
    if not math.isclose(sum(counted.values()), step["flops/step"], rel_tol=1e-6):  # count what the trainer counts
        raise RuntimeError(f"phase FLOPs {sum(counted.values()):.4g} != logged flops/step {step['flops/step']:.4g}")
    wall_s, cpu_s = step["time/step_s"], step["cpu_s"]
    phases = {p: {"wall_s": step[f"time/{p}_s"], "cpu_s": cpu.get(p, 0.0), "flops": counted[p],
                  "executed_flops": executed[p]} for p in PHASES}
    for v in phases.values():
        v["ratio"] = v["wall_s"] / (v["flops"] / peak["wall"]) if v["flops"] else math.nan
        v["executed_cpu_ratio"] = v["cpu_s"] / (v["executed_flops"] / peak["cpu"]) if v["flops"] else math.nan
    flops, ex = sum(counted.values()), sum(executed.values())
    return {"wall_s": wall_s, "cpu_s": cpu_s, "cores_used": cpu_s / wall_s,  # < threads: the step waited
            "peak_flops_wall": peak["wall"], "peak_flops_cpu": peak["cpu"],
            "flops": flops, "roofline_s": flops / peak["wall"], "ratio": wall_s / (flops / peak["wall"]),
            "cpu_ratio": cpu_s / (flops / peak["cpu"]),
            "executed_flops": ex, "executed_ratio": wall_s / (ex / peak["wall"]),
            "executed_cpu_ratio": cpu_s / (ex / peak["cpu"]), "achieved_flops_wall": ex / wall_s,
            "tokens_prompt": step["tokens/prompt"], "tokens_generated": step["tokens/generated"],
            "generated_tok_per_s": step["tokens/generated"] / max(step["time/rollout_s"], 1e-9),
            "tokens_per_s": (step["tokens/prompt"] + step["tokens/generated"]) / wall_s, "phases": phases}


def _medians(steps: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: statistics.median(s[k] for s in steps) for k in steps[0] if k != "phases"}
    out["phases"] = {p: {k: statistics.median(s["phases"][p][k] for s in steps) for k in v}
                     for p, v in steps[0]["phases"].items()}
    return out


def format_report(result: dict[str, Any]) -> str:
    """The medians as a small table (what `mathrl bench` prints)."""
    c, m = result["config"], result["median"]
    lines = [f"{c['model']}: {c['prompts']} prompts x {c['samples']} samples x <= {c['new_tokens']} new tokens, "
             f"beta={c['kl_coef']}, mu={c['ppo_epochs']}, {c['threads']} threads, median of {c['repeats']} steps",
             f"{c.get('compute_dtype', 'float32')} matmul peak {m['peak_flops_wall'] / 1e9:.1f} GFLOP/s (wall), "
             f"{m['peak_flops_cpu'] / 1e9:.1f} "
             f"GFLOP/s per CPU second",
             f"{'phase':<13}{'wall s':>8}{'CPU s':>8}{'GFLOP':>8}{'exec GFLOP':>11}{'x roofline':>11}"
             f"{'x exec (CPU)':>13}"]
    for p, v in m["phases"].items():
        lines.append(f"{p:<13}{v['wall_s']:>8.2f}{v['cpu_s']:>8.2f}{v['flops'] / 1e9:>8.1f}"
                     f"{v['executed_flops'] / 1e9:>11.1f}{v['ratio']:>11.2f}{v['executed_cpu_ratio']:>13.2f}")
    lines += [f"{'step':<13}{m['wall_s']:>8.2f}{m['cpu_s']:>8.2f}{m['flops'] / 1e9:>8.1f}"
              f"{m['executed_flops'] / 1e9:>11.1f}{m['ratio']:>11.2f}{m['executed_cpu_ratio']:>13.2f}",
              f"roofline {m['roofline_s']:.2f} s (counted FLOPs / wall peak); executed-FLOP ratio "
              f"{m['executed_ratio']:.2f}x wall; {m['cores_used']:.2f} cores used",
              f"generated {m['tokens_generated']:.0f} tokens at {m['generated_tok_per_s']:.1f} tok/s in the rollout; "
              f"{m['tokens_per_s']:.1f} tok/s (prompt + generated) over the step; "
              f"peak RSS {result['peak_rss_mib']:.0f} MiB"]
    return "\n".join(lines)
