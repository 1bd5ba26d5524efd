"""CPU milliseconds of the tiny bench step's heaviest shapes, 1 thread (speed6.md): the packed
attention of a log-prob pass (128 rows, 4 query / 2 KV heads, 32 queries, 89 keys, head dim 16),
eager as mathrl runs it and SDPA, and one decode step of mathrl.engine.decoder over 128 rows."""
import time

import torch
import torch.nn.functional as F

from mathrl.engine.decoder import Decoder, KVCache
from mathrl.models import load_model

torch.set_num_threads(1)


def cpu_ms(f, n=30):
    f()
    c = time.process_time()
    for _ in range(n):
        f()
    return (time.process_time() - c) / n * 1e3


n, K, H, w, L, D = 128, 2, 4, 32, 89, 16
for dt in (torch.bfloat16, torch.float32):
    q = torch.randn(n, H, w, D, dtype=dt, requires_grad=True)
    k, v = (torch.randn(n, K, L, D, dtype=dt, requires_grad=True) for _ in range(2))
    allowed = torch.rand(n, 1, w, L) > 0.2

    def eager(bwd):  # packing.packed_attention's CPU path
        scores = torch.matmul(q.reshape(n, K, H // K * w, D), k.transpose(-1, -2)) * 0.25
        scores = scores.view(n, K, H // K, w, L).masked_fill(~allowed[:, :, None], float("-inf"))
        out = torch.matmul(torch.softmax(scores, -1, dtype=torch.float32).to(dt).view(n, K, H // K * w, L), v)
        if bwd:
            out.float().sum().backward()

    def sdpa(bwd):
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=0.25, enable_gqa=True)
        if bwd:
            out.float().sum().backward()

    scores_in = q.detach().reshape(n, K, H // K * w, D)
    with torch.no_grad():
        print(f"{dt}: scores bmm {cpu_ms(lambda: torch.matmul(scores_in, k.detach().transpose(-1, -2))):.2f} ms; "
              f"attention forward eager {cpu_ms(lambda: eager(False)):.2f} ms, sdpa {cpu_ms(lambda: sdpa(False)):.2f} ms")
    print(f"{dt}: attention forward + backward eager {cpu_ms(lambda: eager(True)):.2f} ms, sdpa {cpu_ms(lambda: sdpa(True)):.2f} ms")

for dtype in ("bfloat16", "float32"):
    model, _ = load_model("tiny", dtype=dtype)
    dec = Decoder(model)
    P = 57
    cache = KVCache(dec, n, P + 32, torch.zeros(n, P))
    with torch.no_grad():
        dec.forward(torch.randint(10, 60, (n, P)), torch.arange(P).expand(n, P), cache)
        tokens, pos = torch.randint(10, 60, (n, 1)), torch.full((n, 1), P)

        def step():
            cache.length = P
            return dec.forward(tokens, pos, cache)

        layer = dec.layers[0]
        qkv = dec._linear(dec._norm(torch.randn(n, 1, 64), layer.norm_attn), layer.qkv, layer.qkv_bias)
        qd = qkv.view(n, 1, H + 2 * K, D).transpose(1, 2)[:, :H].to(dec.compute)
        cache.reserve(1)
        keys, values = cache.keys[0, :n], cache.values[0, :n]
        attn = cpu_ms(lambda: dec._attention(qd, keys, values, cache.key_bias(n), P), 100)
        print(f"decode step, 128 rows, {dtype}: {cpu_ms(step, 100):.2f} ms; its attention {attn:.3f} ms per layer")
