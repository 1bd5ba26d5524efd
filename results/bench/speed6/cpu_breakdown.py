"""Process CPU seconds per part of a tiny bench step (16 x 8, 32 tokens, 1 thread), steps 3-8
of one process: `OMP_NUM_THREADS=1 PYTHONPATH=<code> python cpu_breakdown.py` (speed6.md)."""
import time, tempfile, collections, functools, torch
import mathrl.update as U, mathrl.logprobs as LP, mathrl.train as T, mathrl.engine.decoder as DEC, mathrl.rollout as R
from mathrl.config import build_config
from mathrl.run_state import build_run_state
acc=collections.defaultdict(float)
def wrap(mod, name, label):
    f=getattr(mod,name)
    @functools.wraps(f)
    def g(*a,**k):
        c=time.process_time()
        try: return f(*a,**k)
        finally: acc[label]+=time.process_time()-c
    setattr(mod,name,g)
wrap(U,"forward_completion","update.forward"); wrap(U,"_micro_loss","update.micro_loss(total)")
wrap(LP,"forward_completion","ref.forward")
wrap(R,"generate_rows","rollout.decode_loop"); wrap(R,"decoder_for","rollout.snapshot")
wrap(R,"decode_completions","rollout.detok"); wrap(R,"encode_prompts","rollout.encode")
wrap(T,"grade","grade"); wrap(T,"batch_metrics","batch_metrics"); wrap(T,"advantages","advantages")
with tempfile.TemporaryDirectory() as out:
    cfg = build_config("grpo", None, {"model":"tiny","task":"arithmetic","prompts_per_step":16,"group_size":8,"max_new_tokens":32,
        "kl_coef":0.04,"threads":1,"seed":0,"eval_limit":0,"eval_every":0,"samples_every":0,"save_final":False,"max_steps":12,"output":out})
    state = build_run_state(cfg)
    wrap(state.accelerator,"backward","update.backward"); wrap(state.optimizer,"step","update.optim_step")
    wrap(state.accelerator,"clip_grad_norm_","update.clip")
    tot={}
    for i in range(8):
        if i==2: acc.clear(); c0=time.process_time(); tot={}
        state.policy_is_reference=False; T.train_step(state)
        for k,v in state.meter.step_metrics().items():
            if k.startswith("time/"): tot[k]=tot.get(k,0)+v
    n=6; print("step cpu", (time.process_time()-c0)/n)
    for k,v in sorted(acc.items()): print(f"{k:28s} {v/n*1e3:7.1f} ms")
