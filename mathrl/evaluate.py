"""evaluate(model, task, problems, ...) -> accuracy, pass@k, maj@k, KL drift.

- accuracy: greedy decoding, one completion per problem, graded by the task's verifier (the
  same `grade` the reward uses, but without any shaping, so reward hacking shows here);
- pass@k / maj@k: n samples per problem at `temperature`; pass@k by the unbiased estimator
  (Chen et al. 2021), maj@k by majority vote over the first k extracted answers, votes
  pooled by the verifier's equivalence;
- every grade twice: strictly (the task's grader, the reward's) and leniently (the task's
  `lenient_extractor`, format-insensitive), so that learning the answer format is never read
  as learning to reason (`accuracy` / `accuracy_lenient`, `pass@k` / `pass@k_lenient`, ...);
- KL drift: KL(pi || pi_ref) estimated on completions sampled from pi (k1 and k3, per token
  and per sequence). It is measured on samples, not greedy outputs, because the estimators are
  unbiased only under the policy's own distribution.
"""

from __future__ import annotations

import contextlib
import math
import sys
from typing import Any

import torch

from mathrl.health import warn_if_no_reward
from mathrl.logprobs import completion_logprobs
from mathrl.loss import kl
from mathrl.metrics import maj_at_k, mean_stderr, pass_at_k
from mathrl.rollout import hf_generate
from mathrl.types import Problem


def evaluate(model, tokenizer, task, problems: list[Problem], max_new_tokens: int, *, n: int = 0,
             temperature: float = 1.0, top_p: float = 1.0, k_values: tuple[int, ...] = (1,),
             ref_model=None, kl_samples: bool = True, micro_batch_size: int = 8,
             max_rows: int = 64, progress: bool = False,
             policy_is_reference: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Returns (summary, per-problem sample rows). `progress` shows a bar over generated rows
    (an eval of GSM8K at 512 tokens takes minutes on CPU). `policy_is_reference` (step 0, or
    right after a reference reset): the drift is exactly 0, so no sample is drawn to measure it."""
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    kl_pass = ref_model is not None and n == 0 and kl_samples and not policy_is_reference  # KL's own sample
    bar = tqdm(total=len(problems) * (1 + n + kl_pass), desc=f"eval {task.name}", unit="sample", leave=False,
               disable=not progress, dynamic_ncols=True, file=sys.stderr)
    gen = dict(max_rows=max_rows, on_rows=bar.update)
    greedy = hf_generate(model, tokenizer, problems, 1, max_new_tokens, greedy=True, **gen)
    grades, lenient = grade_both(task, greedy.completions, greedy.problems)
    acc, stderr = mean_stderr([1.0 if g.correct else 0.0 for g in grades])
    acc_lenient, stderr_lenient = mean_stderr([1.0 if g.correct else 0.0 for g in lenient])
    lengths = greedy.completion_mask.sum(-1).float()
    summary: dict[str, Any] = {
        "task": task.name, "task_version": task.version, "n": len(problems), "accuracy": acc,
        "accuracy_stderr": stderr, "accuracy_lenient": acc_lenient, "accuracy_lenient_stderr": stderr_lenient,
        "len_mean": float(lengths.mean()), "truncated_frac": float(greedy.truncated.float().mean()),
        "no_answer_frac": sum(g.extracted is None for g in grades) / max(len(grades), 1),
    }
    rows = [{"id": p.id, "completion": c, "extracted": g.extracted, "gold": p.gold, "correct": g.correct,
             "correct_lenient": gl.correct, "reason": g.reason}
            for p, c, g, gl in zip(problems, greedy.completions, grades, lenient)]
    sampled = None
    if n > 0:
        sampled = hf_generate(model, tokenizer, problems, n, max_new_tokens, temperature=temperature,
                              top_p=top_p, **gen)
        metrics, per_problem = sampled_metrics(task, sampled, n, k_values)
        summary.update(metrics)
        for i, row in enumerate(rows):  # per sample, so that paired per-problem analyses need no re-grading
            row["samples"] = sampled.completions[i * n:(i + 1) * n]
            row.update(per_problem[i])
    if ref_model is not None and policy_is_reference:  # pi == pi_ref: every estimator is 0
        summary["kl_drift"] = {"k1_token": 0.0, "k3_token": 0.0, "k1_seq": 0.0, "k3_seq": 0.0}
    elif ref_model is not None:
        if kl_pass:
            sampled = hf_generate(model, tokenizer, problems, 1, max_new_tokens, temperature=temperature,
                                  top_p=top_p, **gen)
        summary["kl_drift"] = kl_drift(model, ref_model, sampled or greedy, temperature, micro_batch_size)
    bar.close()
    model.train(was_training)
    return summary, rows


def evaluate_model(model, task, *, split: str = "test", limit: int | None = None, n: int = 0,
                   temperature: float = 1.0, top_p: float = 1.0, k_values: tuple[int, ...] = (1,),
                   ref: str | None = None, max_new_tokens: int | None = None, seed: int = 0,
                   data_dir: str | None = None, tasks_dir=None,
                   progress: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """evaluate() by names (what `mathrl eval` runs): `model` is a registry name, a folder
    (e.g. RUN/final) or a Hub id, `task` a name, YAML path or Task; the first `limit`
    problems of `split` in a fixed order."""
    from mathrl.models import load_model
    from mathrl.tasks import Task, get_task

    torch.manual_seed(seed)
    the_task = task if isinstance(task, Task) else get_task(task, data_dir=data_dir, tasks_dir=tasks_dir)
    problems = the_task.load(split, limit=limit, seed=0)
    policy, tokenizer = load_model(str(model), seed=seed, dtype="auto")
    ref_model = load_model(ref, seed=seed, dtype="auto")[0] if ref else None
    summary, rows = evaluate(policy, tokenizer, the_task, problems, max_new_tokens or the_task.max_new_tokens,
                             n=n, temperature=temperature, top_p=top_p, k_values=k_values, ref_model=ref_model,
                             progress=progress)
    summary["model"] = str(model)
    return summary, rows


def grade_both(task, completions: list[str], problems: list[Problem]):
    """(strict grades, lenient grades); one grading pass when the two extractors are the same."""
    strict = task.grade_batch(completions, problems)
    same = task.lenient_extractor == task.extractor
    return strict, (strict if same else task.grade_batch(completions, problems, lenient=True))


def sampled_metrics(task, batch, n: int, k_values: tuple[int, ...]) -> tuple[dict[str, float], list[dict]]:
    """pass@k and maj@k, strict and lenient; and per problem the samples' extracted answers and
    verdicts (the rows of samples/eval-*.jsonl)."""
    strict, lenient = grade_both(task, batch.completions, batch.problems)
    same = _equivalence(task)
    out: dict[str, float] = {}
    for suffix, grades in (("", strict), ("_lenient", lenient)):
        per_problem = [grades[i:i + n] for i in range(0, len(grades), n)]
        for k in k_values:
            if k > n:
                continue
            out[f"pass@{k}{suffix}"] = sum(pass_at_k(n, sum(g.correct for g in gs), k)
                                           for gs in per_problem) / len(per_problem)
            out[f"maj@{k}{suffix}"] = sum(
                maj_at_k([g.extracted for g in gs], [g.correct for g in gs], k, equivalent=same)
                for gs in per_problem) / len(per_problem)
    rows = [{"samples_extracted": [g.extracted for g in strict[i:i + n]],
             "samples_correct": [g.correct for g in strict[i:i + n]],
             "samples_extracted_lenient": [g.extracted for g in lenient[i:i + n]],
             "samples_correct_lenient": [g.correct for g in lenient[i:i + n]]} for i in range(0, len(strict), n)]
    return out, rows


def _equivalence(task):
    """Votes pool answers the verifier calls equal (e.g. "0.5" and "1/2"); under a grader
    hook, only identical answers (two expressions of one value may differ in verdict)."""
    from mathrl.verify import equivalent

    if task.grader_hook:
        return None
    return lambda a, b: equivalent(a, b, mode=task.mode)


@torch.no_grad()
def kl_drift(model, ref_model, batch, temperature: float, micro_batch_size: int) -> dict[str, float]:
    """Mean k1 and k3 of KL(pi || ref) per token and per sequence on completions from pi."""
    mask = batch.completion_mask
    logp = completion_logprobs(model, batch, temperature, micro_batch_size)["logp"]  # (N, T)
    ref = completion_logprobs(ref_model, batch, temperature, micro_batch_size)["logp"]  # (N, T)
    k1 = kl(logp, ref, "k1") * mask  # (N, T)
    k3 = kl(logp, ref, "k3") * mask  # (N, T)
    tokens = mask.sum().clamp(min=1)
    out = {"k1_token": float(k1.sum() / tokens), "k3_token": float(k3.sum() / tokens),
           "k1_seq": float(k1.sum(-1).mean()), "k3_seq": float(k3.sum(-1).mean())}
    return {k: (v if math.isfinite(v) else None) for k, v in out.items()}


def run_eval(state, final: bool = False) -> dict[str, float]:
    """The run's eval (`state` is a run_state.RunState): written to eval/ and samples/, and
    returned as eval/<task>/* metrics; the step-0 eval is logged at once."""
    if not state.eval_problems:
        return {}
    cfg = state.cfg
    # no reference exists without KL (kl_coef=0, eval_kl=false): enter it only when measuring drift
    measure_kl = cfg.eval_kl is True or (cfg.eval_kl is None and (state.ref_model is not None or cfg.lora_rank > 0))
    with state.meter.phase("eval"), state.reference() if measure_kl else contextlib.nullcontext() as ref:
        summary, rows = evaluate(state.policy_for_generation(), state.tokenizer, state.task, state.eval_problems,
                                 state.max_new_tokens, n=cfg.eval_samples,
                                 temperature=cfg.temperature, top_p=cfg.top_p,
                                 k_values=tuple(k for k in (1, 4, 8, 16, 32, 64) if k <= cfg.eval_samples),
                                 ref_model=ref if measure_kl else None, micro_batch_size=state.micro_batch_size,
                                 max_rows=max(cfg.batch_size, 16), progress=state.show_progress,
                                 policy_is_reference=state.policy_is_reference)
    name = "final" if final else f"step-{state.step:06d}"
    if state.accelerator.is_main_process:
        state.run.write_eval(name, {**summary, "step": state.step})
        state.run.write_samples(f"eval-{name}", rows)
    prefix = f"eval/{state.task.name}/"
    metrics = {prefix + "acc": summary["accuracy"], prefix + "acc_stderr": summary["accuracy_stderr"],
               prefix + "len_mean": summary["len_mean"], prefix + "truncated_frac": summary["truncated_frac"],
               prefix + "no_answer_frac": summary["no_answer_frac"],
               prefix + "acc_lenient": summary["accuracy_lenient"],
               **{prefix + k: v for k, v in summary.items() if k.startswith(("pass@", "maj@"))}}
    if "kl_drift" in summary:
        metrics[prefix + "kl_k1"] = summary["kl_drift"]["k1_token"]
        metrics[prefix + "kl_k3"] = summary["kl_drift"]["k3_token"]
    if state.step == 0 and not final:
        state.log({**metrics, "step": 0})
        warn_if_no_reward(state, summary)
    return metrics
