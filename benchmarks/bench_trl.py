"""One GRPO step in mathrl and in TRL's GRPOTrainer, per 1,000 completion tokens, in one run.

Issue 14's target: "A GRPO step costs <= 0.12x TRL's time per completion token". Setting:
SmolLM2-135M-Instruct, 2 prompts x 8 samples x <= 32 completion tokens, beta 0.04, one update
epoch (mu = 1, so neither side runs an old-log-prob pass), lr 1e-5, temperature 1, top_p 1,
1 torch thread, CPU, the `arithmetic` task (both sides grade with mathrl's checker).

    pip install trl    # optional: not a mathrl dependency
    OMP_NUM_THREADS=1 python benchmarks/bench_trl.py --rounds 2 --steps 3 --output trl.json
    python benchmarks/bench_trl.py --model tiny --rounds 1 --steps 1     # smoke test, seconds

Protocol: each side warms up 1 step (not timed), then R rounds of S timed steps per side,
alternating the order (round 0 mathrl then TRL, round 1 TRL then mathrl, ...) so that slow
drift of the machine hits both sides alike. Reported per side: median wall and process-CPU
seconds per step, completion tokens per step, and seconds per 1,000 completion tokens (sum of
step seconds / sum of tokens x 1000, on both clocks); then mathrl / TRL on both clocks.

Each side runs in its own spawned worker process, started one after the other and then driven
block by block over a pipe (the idle side waits in a blocking read, using no CPU), because one
process cannot host both fairly: accelerate's AcceleratorState is a process-wide singleton
(mathrl's Accelerator and TRL's Trainer would share, and fight over, its mixed-precision
setting), and torch's allocator and autocast caches would carry one side's state into the other.
TRL's loop is driven from a TrainerCallback: on_step_begin waits for the next block's go.

What a step is. mathrl: `train.train_step(state)`, as `mathrl bench` times it (rollout, reward,
reference log-probs, update with AdamW), mathrl's defaults (dtype auto: bf16 autocast on a CPU
with bf16 units). TRL: on_step_begin -> on_step_end of one Trainer step = one generation of 16
completions (steps_per_generation = gradient_accumulation_steps = 1), reference log-probs,
reward, advantages, one forward/backward, grad clipping, optimizer and scheduler step; TRL's
logging runs after on_step_end and is not timed. Completion tokens are counted exactly on both
sides, EOS included: mathrl's `tokens/generated` (completion_mask.sum()), and for TRL the lengths
of the `completion_ids` its reward function receives (cut after the first EOS, EOS kept).
TRL choices: float32 by default (--trl-bf16: bf16 mixed precision), gradient checkpointing off
like mathrl (TRL 1.16 defaults it on; --trl-gradient-checkpointing restores that), loss_type
"grpo" (mathrl's GRPO aggregation: token mean per sequence, then mean), no vLLM. Both workers
keep freed memory for reuse (mathrl.engine.host.reuse_freed_memory, which `mathrl run` sets in its own
process): it made TRL's step 21% faster too (results/bench/speed3.md); --trl-system-malloc leaves
TRL's worker on glibc's defaults, as TRL runs on its own.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from importlib import metadata
from pathlib import Path

SIDES = ("mathrl", "trl")
TRL_MISSING = "bench_trl.py needs TRL (an optional benchmark dependency): pip install 'trl>=1.16'"


def mathrl_worker(conn, a: dict) -> None:
    import torch

    from mathrl.config import build_config
    from mathrl.models import AUTOCAST_ATTR
    from mathrl.run_state import build_run_state
    from mathrl.train import train_step

    torch.set_num_threads(a["threads"])
    with tempfile.TemporaryDirectory(prefix="bench-trl-mathrl-") as out:
        overrides = dict(kv.split("=", 1) for kv in a["set"])
        cfg = build_config("grpo", None, {
            "model": a["model"], "task": "arithmetic", "prompts_per_step": a["prompts"], "group_size": a["samples"],
            "max_new_tokens": a["new_tokens"], "kl_coef": a["beta"], "ppo_epochs": 1, "lr": a["lr"],
            "temperature": 1.0, "top_p": 1.0, "threads": a["threads"], "seed": a["seed"], "eval_limit": 0,
            "eval_every": 0, "samples_every": 0, "save_final": False, "max_steps": 1 + a["rounds"] * a["steps"],
            "output": out, **overrides})
        state = build_run_state(cfg)
        conn.send(("ready", {"compute_dtype": str(getattr(state.policy_for_generation(), AUTOCAST_ATTR, None)),
                             "micro_batch_size": cfg.micro_batch_size, "overrides": overrides}))
        while (n := conn.recv()) != "stop":
            records = []
            for _ in range(n):
                # SmolLM2 earns no reward on `arithmetic`, so every advantage is 0, and while the
                # policy still equals the reference train_step skips the optimizer update
                # (update.carries_signal): the step would be unfairly cheap. TRL always runs
                # forward/backward/optimizer step, so force the update here too.
                state.policy_is_reference = False
                w0, c0 = time.perf_counter(), time.process_time()
                metrics = train_step(state)
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                state.step += 1
                m = state.meter.step_metrics()
                if not (m["time/update_s"] > 0 and metrics.get("optim/steps", 0) >= 1):
                    raise RuntimeError(f"mathrl step ran no update: update {m['time/update_s']} s, "
                                       f"optim/steps {metrics.get('optim/steps')}")
                records.append({"wall_s": wall, "cpu_s": cpu, "completion_tokens": int(m["tokens/generated"]),
                                "prompt_tokens": int(m["tokens/prompt"]), "optimizer_steps": metrics["optim/steps"],
                                "phases_wall_s": {p: m[f"time/{p}_s"] for p in
                                                  ("rollout", "reward", "reference", "old_logprobs", "update")}})
            conn.send(("records", records))


def trl_worker(conn, a: dict) -> None:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from mathrl.engine.host import reuse_freed_memory
    from mathrl.models import load_model
    from mathrl.reward import base_rewards
    from mathrl.tasks import get_task

    torch.set_num_threads(a["threads"])
    if not a["trl_system_malloc"]:  # the allocator mathrl's worker gets from build_run_state
        reuse_freed_memory()
    tmp = Path(tempfile.mkdtemp(prefix="bench-trl-trl-"))
    model, tok = load_model(a["model"], seed=a["seed"], dtype="float32")  # the very weights mathrl loads
    name = model.config._name_or_path
    if not (name and Path(name).is_dir()):
        # TRL builds its reference with from_pretrained(config._name_or_path); the tiny model
        # exists only in memory, so give it a folder (smollm2-135m already has mathrl's cache).
        model.save_pretrained(tmp / "model")
        model.config._name_or_path = str(tmp / "model")
    task = get_task("arithmetic")
    problems = {p.id: p for p in task.load("train", limit=1000, seed=a["seed"])}
    # prompt lengths (one row each, as mathrl's tokens/prompt counts them), computed before any
    # timing so that TRL's timed reward call does no extra work
    prompt_len = {i: len(tok(tok.apply_chat_template(p.messages, tokenize=False, add_generation_prompt=True),
                             add_special_tokens=False)["input_ids"]) for i, p in problems.items()}
    calls: list[dict] = []  # one entry per reward call (= per generation)

    def arithmetic_reward(prompts, completions, completion_ids, problem_id, **_):
        calls.append({"completion_tokens": sum(len(c) for c in completion_ids), "rows": len(completion_ids),
                      "prompt_tokens": sum(prompt_len[i] for i in problem_id)})
        texts = ["".join(m["content"] for m in c) if isinstance(c, list) else c for c in completions]
        return base_rewards(task.grade_batch(texts, [problems[i] for i in problem_id])).tolist()

    class Driver(TrainerCallback):
        """Times each Trainer step; between blocks, reports and waits for the next go."""

        def __init__(self):
            self.quota, self.block, self.started, self.opt = 0, [], False, 0

        def on_step_begin(self, args, state, control, **kw):
            if self.quota == 0:
                conn.send(("records", self.block) if self.started else ("ready", info))
                self.quota, self.block, self.started = conn.recv(), [], True
            calls.clear()
            self.opt, self.t0 = 0, (time.perf_counter(), time.process_time())

        def on_optimizer_step(self, args, state, control, **kw):
            self.opt += 1

        def on_step_end(self, args, state, control, **kw):
            wall, cpu = time.perf_counter() - self.t0[0], time.process_time() - self.t0[1]
            if len(calls) != 1 or calls[0]["rows"] != a["prompts"] * a["samples"] or self.opt != 1:
                raise RuntimeError(f"TRL step was not one generation + one optimizer step: {calls}, {self.opt}")
            self.block.append({"wall_s": wall, "cpu_s": cpu, "completion_tokens": calls[0]["completion_tokens"],
                               "prompt_tokens": calls[0]["prompt_tokens"], "optimizer_steps": self.opt})
            self.quota -= 1

    rows = a["prompts"] * a["samples"]
    args = GRPOConfig(
        output_dir=str(tmp / "out"), per_device_train_batch_size=rows, num_generations=a["samples"],
        gradient_accumulation_steps=1, steps_per_generation=1, num_iterations=1,
        max_completion_length=a["new_tokens"], beta=a["beta"], learning_rate=a["lr"], temperature=1.0, top_p=1.0,
        loss_type="grpo", use_cpu=True, bf16=a["trl_bf16"], gradient_checkpointing=a["trl_gradient_checkpointing"],
        use_vllm=False, report_to="none", logging_steps=1, save_strategy="no", disable_tqdm=True,
        max_steps=1 + a["rounds"] * a["steps"], seed=a["seed"])
    info = {k: getattr(args, k) for k in (
        "per_device_train_batch_size", "num_generations", "generation_batch_size", "steps_per_generation",
        "gradient_accumulation_steps", "num_iterations", "max_completion_length", "beta", "learning_rate",
        "temperature", "top_p", "top_k", "loss_type", "scale_rewards", "bf16", "gradient_checkpointing",
        "max_grad_norm", "weight_decay", "use_vllm")}
    info["optim"], info["lr_scheduler_type"] = str(args.optim), str(args.lr_scheduler_type)
    dataset = Dataset.from_list([{"prompt": p.messages, "problem_id": i} for i, p in problems.items()])
    trainer = GRPOTrainer(model=model, reward_funcs=arithmetic_reward, args=args, train_dataset=dataset,
                          processing_class=tok, callbacks=[driver := Driver()])
    try:
        trainer.train()
        conn.send(("records", driver.block))
        conn.recv()  # "stop"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _worker(side: str, conn, a: dict) -> None:
    try:
        (mathrl_worker if side == "mathrl" else trl_worker)(conn, a)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        raise


def _expect(side: str, proc, conn, kind: str):
    while not conn.poll(1.0):
        if not proc.is_alive():
            raise SystemExit(f"bench_trl: the {side} worker died (exit code {proc.exitcode})")
    got, payload = conn.recv()
    if got == "error":
        raise SystemExit(f"bench_trl: the {side} worker failed:\n{payload}")
    if got != kind:
        raise SystemExit(f"bench_trl: expected {kind!r} from the {side} worker, got {got!r}")
    return payload


def summarize(records: list[dict]) -> dict:
    tokens = sum(r["completion_tokens"] for r in records)
    return {"steps": len(records), "median_wall_s": statistics.median(r["wall_s"] for r in records),
            "median_cpu_s": statistics.median(r["cpu_s"] for r in records),
            "completion_tokens_per_step": tokens / len(records),
            "prompt_tokens_per_step": sum(r["prompt_tokens"] for r in records) / len(records),
            "wall_s_per_1k_tokens": sum(r["wall_s"] for r in records) / tokens * 1000,
            "cpu_s_per_1k_tokens": sum(r["cpu_s"] for r in records) / tokens * 1000}


def versions() -> dict:
    import mathrl

    out = {"python": sys.version.split()[0], "mathrl_file": mathrl.__file__}
    for pkg in ("torch", "transformers", "trl", "accelerate", "datasets"):
        out[pkg] = metadata.version(pkg)
    git = subprocess.run(["git", "-C", str(Path(mathrl.__file__).parent), "rev-parse", "HEAD"],
                         capture_output=True, text=True)
    out["mathrl_commit"] = git.stdout.strip() if git.returncode == 0 else None
    cpu = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")] \
        if Path("/proc/cpuinfo").exists() else []
    out["cpu"], out["cpu_count"] = (cpu[0].split(":", 1)[1].strip() if cpu else None), os.cpu_count()
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="smollm2-135m", help="mathrl model name (smollm2-135m, tiny)")
    p.add_argument("--rounds", type=int, default=2, help="R: rounds, alternating which side goes first")
    p.add_argument("--steps", type=int, default=3, help="S: timed steps per side per round")
    p.add_argument("--prompts", type=int, default=2)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--beta", type=float, default=0.04)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--threads", type=int, default=1, help="torch threads in each worker")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="mathrl config override")
    p.add_argument("--trl-bf16", action="store_true", help="TRL with bf16 mixed precision (default float32)")
    p.add_argument("--trl-gradient-checkpointing", action="store_true", help="TRL 1.16's default (off here)")
    p.add_argument("--trl-system-malloc", action="store_true",
                   help="TRL's worker on glibc's malloc defaults (default: freed memory reused, as in mathrl's)")
    p.add_argument("--output", help="write the raw step records, config and versions here (JSON)")
    a = vars(p.parse_args(argv))
    if importlib.util.find_spec("trl") is None:
        raise SystemExit(TRL_MISSING)
    if any("=" not in kv for kv in a["set"]):
        raise SystemExit("--set expects KEY=VALUE")
    # inherited by the spawned workers: one OpenMP thread, no tokenizer thread pool, no Hub calls
    os.environ.update(OMP_NUM_THREADS=str(a["threads"]), TOKENIZERS_PARALLELISM="false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ctx, procs, conns, ready = mp.get_context("spawn"), {}, {}, {}
    try:
        for side in SIDES:  # one at a time: one side's start-up must not overlap the other's steps
            conns[side], child = ctx.Pipe()
            procs[side] = ctx.Process(target=_worker, args=(side, child, a), name=f"bench-trl-{side}")
            procs[side].start()
            ready[side] = _expect(side, procs[side], conns[side], "ready")
            print(f"{side}: ready", file=sys.stderr)

        def run(side: str, n: int) -> list[dict]:
            conns[side].send(n)
            return _expect(side, procs[side], conns[side], "records")

        warmup = {side: run(side, 1) for side in SIDES}  # first step: lazy init, allocator growth
        steps = []
        for r in range(a["rounds"]):
            for pos, side in enumerate(SIDES if r % 2 == 0 else SIDES[::-1]):
                for i, rec in enumerate(run(side, a["steps"])):
                    steps.append({"side": side, "round": r, "position": pos, "step": i, **rec})
                    print(f"round {r} {side:<6} step {i}: {rec['wall_s']:.2f} s wall, {rec['cpu_s']:.2f} s CPU, "
                          f"{rec['completion_tokens']} completion tokens", file=sys.stderr)
        for side in SIDES:
            conns[side].send("stop")
            procs[side].join(60)
    finally:
        for proc in procs.values():
            if proc.is_alive():
                proc.terminate()
    summary = {side: summarize([s for s in steps if s["side"] == side]) for side in SIDES}
    ratio = {clock: summary["mathrl"][f"{clock}_s_per_1k_tokens"] / summary["trl"][f"{clock}_s_per_1k_tokens"]
             for clock in ("wall", "cpu")}
    print(f"{a['model']}: {a['prompts']} prompts x {a['samples']} samples x <= {a['new_tokens']} tokens, "
          f"beta {a['beta']}, mu 1, lr {a['lr']}, {a['threads']} thread(s); {a['rounds']} rounds x {a['steps']} "
          f"steps per side; mathrl {ready['mathrl']['compute_dtype']}, TRL bf16={a['trl_bf16']}, "
          f"TRL on glibc's malloc defaults={a['trl_system_malloc']}")
    print(f"{'side':<8}{'steps':>6}{'wall s':>9}{'CPU s':>8}{'compl tok':>10}{'prompt tok':>11}"
          f"{'wall s/1k tok':>14}{'CPU s/1k tok':>13}")
    for side, s in summary.items():
        print(f"{side:<8}{s['steps']:>6}{s['median_wall_s']:>9.2f}{s['median_cpu_s']:>8.2f}"
              f"{s['completion_tokens_per_step']:>10.1f}{s['prompt_tokens_per_step']:>11.1f}"
              f"{s['wall_s_per_1k_tokens']:>14.2f}{s['cpu_s_per_1k_tokens']:>13.2f}")
    print(f"mathrl / TRL per completion token: {ratio['wall']:.3f}x wall, {ratio['cpu']:.3f}x CPU (target <= 0.12x)")
    result = {"config": {k: v for k, v in a.items() if k != "output"}, "mathrl_setup": ready["mathrl"],
              "trl_config": ready["trl"], "versions": versions(), "summary": summary, "ratio_mathrl_over_trl": ratio,
              "warmup": warmup, "steps": steps}
    if a["output"]:
        Path(a["output"]).write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(f"wrote {a['output']}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
