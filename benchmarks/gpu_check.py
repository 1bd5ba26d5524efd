"""One-command GPU check (scripts/gpu_check.sh): does mathrl run on this device, and how fast?

A GPU machine here has no network and no pretrained weights, so the model is a randomly
initialised one of a real shape: Qwen2.5-0.5B's architecture, from a config written below. Its
tokenizer is the repo's own character-level one (mathrl/models.py), padded with filler tokens
up to the model's vocabulary: a random model samples any token id, and each must decode. Only
torch, transformers, accelerate, peft, sympy, typer, pyyaml, safetensors, tqdm are needed.

Checks, each timed and recorded in <out>/summary.json (a failure is recorded and the next
check still runs; the exit status is 1 if any failed):
  grpo    `--steps` GRPO steps through the real trainer (rollout, grade, reference, update) in
          bf16, greedy eval at the start and the end, the checkpoint at the end (0.5B with
          its Adam moments is ~3 GB: one is enough to test resume)
  resume  the same run continued from its last checkpoint for one more step
  final   <run>/final loads as a plain Hugging Face model
  lora    GRPO steps with LoRA adapters (peft)
A random model earns no reward, so every advantage is 0 and the trainer would skip the update
(update.carries_signal); a small entropy bonus (entropy_coef 1e-3) keeps the gradient real, so
the backward pass and the optimizer step run and are timed. Seconds per completion token: the
time of a step over its generated tokens, the first step (warm-up) left out.

    bash scripts/gpu_check.sh                          # cuda, Qwen2.5-0.5B shape, results/gpu/
    python benchmarks/gpu_check.py --device cpu --shape tiny --out /tmp/gpu-check   # the test
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

# Qwen2.5-0.5B (Qwen/Qwen2.5-0.5B-Instruct config.json); "tiny" keeps the test on CPU fast.
SHAPES = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                         rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, max_position_embeddings=4096, tie_word_embeddings=True),
}
# The batch of one step per device: the GPU one is a small real GRPO step (8 prompts x 8 samples).
BATCHES = {"cuda": dict(prompts_per_step=8, group_size=8, max_new_tokens=128, eval_limit=32, micro_batch_size=16),
           "cpu": dict(prompts_per_step=2, group_size=4, max_new_tokens=8, eval_limit=2, micro_batch_size=8)}


def padded_tokenizer(vocab_size: int):
    """mathrl's character-level tokenizer, its vocabulary filled up to vocab_size with
    <|fill_i|> tokens (never produced by encoding, since the pre-tokenizer splits characters)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from mathrl.models import CHATML_TEMPLATE, TINY_CHARS, TINY_SPECIALS, _prepare_tokenizer

    tokens = TINY_SPECIALS + list(TINY_CHARS)
    tokens += [f"<|fill_{i}|>" for i in range(vocab_size - len(tokens))]
    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token="<|unk|>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<|pad|>", unk_token="<|unk|>",
                                        bos_token="<|bos|>", eos_token="<|im_end|>",
                                        additional_special_tokens=["<|im_start|>"], chat_template=CHATML_TEMPLATE,
                                        model_max_length=4096)
    return _prepare_tokenizer(tokenizer)


def write_model(folder: Path, shape: str, device: str) -> int:
    """A random bf16 model of `shape` and its tokenizer, saved as a plain HF folder; returns
    the parameter count."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = padded_tokenizer(SHAPES[shape]["vocab_size"])
    config = Qwen2Config(**SHAPES[shape], pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    with torch.device(device):  # initialising 0.5B parameters on the GPU takes a second, not a minute
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def run_config(model: Path, out: Path, device: str, steps: int, **extra):
    from mathrl.config import build_config

    overrides = {"task": "arithmetic", "model": str(model), "output": str(out), "max_steps": steps,
                 "device": device, "dtype": "bfloat16", "lr": 1e-6, "eval_every": 0, "checkpoint_every": 0,
                 "keep_checkpoints": 1, "samples_every": 1, "entropy_coef": 1e-3,
                 "threads": 1 if device == "cpu" else 0,
                 **BATCHES[device], **extra}
    return build_config("grpo", None, {k: str(v) for k, v in overrides.items()})


def step_rows(run: Path) -> list[dict[str, Any]]:
    from mathrl.results import RunDir

    return [r for r in RunDir(run).read_metrics() if "reward/mean" in r]


def seconds_per_token(rows: list[dict[str, Any]], seconds_key: str, tokens_key: str) -> float:
    """Step seconds over generated tokens, without the first (warm-up) step when there are more."""
    rows = rows[1:] if len(rows) > 1 else rows
    return sum(r[seconds_key] for r in rows) / max(sum(r[tokens_key] for r in rows), 1)


# ---- the checks -------------------------------------------------------------------------------
def check_grpo(ctx: dict) -> dict:
    from mathrl.train import train

    run = train(run_config(ctx["model"], ctx["work"] / "grpo", ctx["device"], ctx["steps"]), progress=False)
    rows = step_rows(run)
    assert len(rows) == ctx["steps"] and all(math.isfinite(r["loss/policy"]) for r in rows), rows
    assert all(r["optim/steps"] > 0 and math.isfinite(r["optim/grad_norm"]) for r in rows), rows
    ctx["run"], ctx["mathrl_s_per_token"] = run, seconds_per_token(rows, "time/step_s", "tokens/generated")
    return {"steps": len(rows), "s_per_completion_token": ctx["mathrl_s_per_token"],
            "step_s": [r["time/step_s"] for r in rows], "tokens_generated": [r["tokens/generated"] for r in rows],
            "loss_policy": [r["loss/policy"] for r in rows], "kl_mean": [r.get("kl/mean") for r in rows]}


def check_resume(ctx: dict) -> dict:
    from mathrl.train import train

    steps = ctx["steps"] + 1
    train(run_config(ctx["model"], ctx["run"], ctx["device"], steps), progress=False, resume=ctx["run"])
    rows = step_rows(ctx["run"])
    assert [r["step"] for r in rows] == list(range(1, steps + 1)), [r["step"] for r in rows]
    return {"steps": len(rows)}


def check_final(ctx: dict) -> dict:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(ctx["run"] / "final")
    return {"class": type(model).__name__, "params": sum(p.numel() for p in model.parameters())}


def check_lora(ctx: dict) -> dict:
    from mathrl.train import train

    steps = min(ctx["steps"], 2)
    run = train(run_config(ctx["model"], ctx["work"] / "lora", ctx["device"], steps, lora_rank=16), progress=False)
    rows = step_rows(run)
    assert len(rows) == steps and all(r["optim/steps"] > 0 for r in rows), rows
    return {"steps": len(rows), "s_per_completion_token": seconds_per_token(rows, "time/step_s", "tokens/generated")}


CHECKS: dict[str, Callable[[dict], dict]] = {"grpo": check_grpo, "resume": check_resume, "final": check_final,
                                             "lora": check_lora}


def run_checks(ctx: dict, names: list[str]) -> dict[str, dict]:
    results: dict[str, dict] = {}
    cuda = ctx["device"] == "cuda"
    for name in names:
        if name in ("resume", "final") and not results.get("grpo", {}).get("ok"):
            results[name] = {"ok": False, "skipped": "needs the grpo check's run"}
            continue
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            results[name] = {"ok": True, **CHECKS[name](ctx)}
        except Exception as e:  # record it and go on: one report shows every broken path at once
            results[name] = {"ok": False, "error": f"{e.__class__.__name__}: {e}",
                             "traceback": traceback.format_exc(limit=8)}
        results[name]["seconds"] = time.perf_counter() - start
        if cuda:
            results[name]["peak_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
        print(f"gpu_check: {name:<7} {'ok' if results[name]['ok'] else 'FAILED'} "
              f"({results[name]['seconds']:.1f} s) {results[name].get('error', '')}", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--shape", default="qwen2.5-0.5b", choices=sorted(SHAPES))
    parser.add_argument("--steps", type=int, default=4, help="GRPO steps of the grpo check")
    parser.add_argument("--out", default="results/gpu", help="folder for summary.json")
    parser.add_argument("--work", default=None, help="folder for the model and runs (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device is visible; run with --device cpu to check the code paths on CPU")
    names = list(CHECKS)
    with tempfile.TemporaryDirectory(prefix="mathrl-gpu-check-") as tmp:
        work = Path(args.work or tmp)
        start = time.perf_counter()
        n_params = write_model(work / "model", args.shape, args.device)
        ctx = {"model": work / "model", "work": work, "device": args.device, "steps": args.steps}
        results = run_checks(ctx, names)
    summary = {"device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu",
               "shape": args.shape, "n_params": n_params, "batch": BATCHES[args.device], "steps": args.steps,
               "versions": {m: __import__(m).__version__ for m in ("torch", "transformers", "accelerate")},
               "total_seconds": time.perf_counter() - start, "checks": results}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"gpu_check: {sum(r['ok'] for r in results.values())}/{len(results)} checks passed in "
          f"{summary['total_seconds']:.0f} s; {Path(args.out) / 'summary.json'}", file=sys.stderr)
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
