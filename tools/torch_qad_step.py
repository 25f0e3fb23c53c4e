#!/usr/bin/env python3
"""The PyTorch yardstick for issue 6's speed target: one QAD step of the default shape, as razor
train runs it, timed in PyTorch (Debian python3-torch; `apt-get install python3-torch`).

Same shapes and work per step as `./razor train` with defaults: the committed teacher's architecture
(qwen3, V 4096, C 256, 6 layers, 4/2 heads x 64, FFN 768, tied embedding), batch 8 x 256, student
weights fake-quantized with STE (decoder linears: super-groups of P = 8 rows, row 0 int4 absmax per
group of 64, the others ternary with scale beta * mean|w|; embedding / lm_head int4 G 64), A8 per
token per group of 64 on every linear input and KV8 per token per head, loss = 0.1 CE + 0.1 AFD (MSE
on 3 layers' hidden states) + 2.0 EAKLD against a top-64 teacher distribution with tail mass, AdamW.
The teacher tensors are random with the store's shapes (their values do not change the work).
Prints tokens/s (median of the timed steps) and peak RSS. With --fp: the full-precision
pretraining step instead (no fake quantization, CE only), issue 4's yardstick for `razor pretrain`.

  /usr/bin/python3 tools/torch_qad_step.py [--threads 2] [--steps 12] [--fp] [--shape default|small|qwen3-0.6b]

PyTorch is configured as its users configure it on Debian (issue 23): the OpenMP build of
OpenBLAS (libopenblas0-openmp) and tcmalloc (libtcmalloc-minimal4), OMP_NUM_THREADS and
torch.set_num_threads equal to --threads. The pthread OpenBLAS and glibc malloc are 3-5x slower.
The script re-executes itself with LD_LIBRARY_PATH / LD_PRELOAD set when they are not, prints
the BLAS and allocator that are mapped into the process, and fails when they are not those.
  apt-get install python3-torch libopenblas0-openmp libtcmalloc-minimal4
"""
import os
import sys

OPENBLAS_OMP_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"


def _threads_arg():
    for i, v in enumerate(sys.argv):
        if v == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if v.startswith("--threads="):
            return v.split("=", 1)[1]
    return "2"


if os.environ.get("RAZOR_TORCH_CONFIGURED") != "1":
    for path in (OPENBLAS_OMP_DIR, TCMALLOC):
        if not os.path.exists(path):
            sys.exit(f"torch_qad_step: {path} is missing: apt-get install libopenblas0-openmp libtcmalloc-minimal4")
    env = dict(os.environ, RAZOR_TORCH_CONFIGURED="1", OMP_NUM_THREADS=_threads_arg(),
               LD_LIBRARY_PATH=OPENBLAS_OMP_DIR + (":" + os.environ["LD_LIBRARY_PATH"] if os.environ.get("LD_LIBRARY_PATH") else ""),
               LD_PRELOAD=TCMALLOC)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import argparse, math, resource, statistics, time
import torch
import torch.nn.functional as F

torch.ones(64, 64) @ torch.ones(64, 64)  # make sure the BLAS is loaded before looking
with open("/proc/self/maps") as f:
    maps = {line.split()[-1] for line in f if line.rstrip().endswith((".so", ".so.0", ".so.4")) or ".so." in line}
blas = sorted(m for m in maps if "openblas" in m or "blas" in os.path.basename(m))
alloc = sorted(m for m in maps if "tcmalloc" in m or "jemalloc" in m)
print(f"torch_qad_step: BLAS {', '.join(blas) or 'none found'}; allocator {', '.join(alloc) or 'glibc malloc'}; "
      f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}", flush=True)
if not any(OPENBLAS_OMP_DIR in m for m in blas) or not any("tcmalloc" in m for m in alloc):
    sys.exit("torch_qad_step: PyTorch is not on OpenBLAS-openmp + tcmalloc; refusing to time a misconfigured yardstick")

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=12)
p.add_argument("--fp", action="store_true", help="full-precision pretraining step (CE only)")
p.add_argument("--shape", choices=["default", "small", "qwen3-0.6b"], default="default",
               help="default: the committed teacher (V 4096, C 256, 6 layers, 4/2 heads, FFN 768), batch 8 x 256; "
                    "small: issue 23's (V 8192, C 512, 8 layers, 8/4 heads, FFN 1536), batch 4 x 512; "
                    "qwen3-0.6b: V 151936, C 1024, 28 layers, 16/8 heads of 128, FFN 3072, batch 1 x 512")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
if a.shape == "small":
    V, C, L, H, KV, D, FF, B, T, G, K = 8192, 512, 8, 8, 4, 64, 1536, 4, 512, 64, 64
elif a.shape == "qwen3-0.6b":
    V, C, L, H, KV, D, FF, B, T, G, K = 151936, 1024, 28, 16, 8, 128, 3072, 1, 512, 64, 64
else:
    V, C, L, H, KV, D, FF, B, T, G, K = 4096, 256, 6, 4, 2, 64, 768, 8, 256, 64, 64


class STE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, q):
        return q

    @staticmethod
    def backward(ctx, g):
        return g, None


def int4_groups(w):  # absmax per group of G along the input dim, levels -7..7
    wg = w.reshape(w.shape[0], -1, G)
    s = wg.abs().amax(-1, keepdim=True).clamp_min(1e-8) / 7
    return (torch.round(wg / s).clamp(-7, 7) * s).reshape(w.shape)


def ternary_groups(w, beta=2.0):
    wg = w.reshape(w.shape[0], -1, G)
    s = (beta * wg.abs().mean(-1, keepdim=True)).clamp_min(1e-8)
    return (torch.round(wg / s).clamp(-1, 1) * s).reshape(w.shape)


def fq_weight(w, P=8):
    if a.fp:
        return w
    rows4 = torch.arange(w.shape[0]) % P == 0
    q = torch.where(rows4[:, None], int4_groups(w), ternary_groups(w))
    return STE.apply(w, q.detach())


def fq_act(x):  # A8: per token, per group of G
    if a.fp:
        return x
    xg = x.reshape(*x.shape[:-1], -1, G)
    s = xg.abs().amax(-1, keepdim=True).clamp_min(1e-5) / 127
    return STE.apply(x, (torch.round(xg / s).clamp(-127, 127) * s).reshape(x.shape).detach())


def fq_kv(x):  # KV8: per token, per head over head_dim (x [B, KV, T, D])
    if a.fp:
        return x
    s = x.abs().amax(-1, keepdim=True).clamp_min(1e-5) / 127
    return STE.apply(x, (torch.round(x / s).clamp(-127, 127) * s).detach())


def rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


inv = 1.0 / (10000 ** (torch.arange(0, D, 2).float() / D))
ang = torch.arange(T).float()[:, None] * inv[None]
cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)


def rope(x):
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def P_(shape, std=0.02):
    return torch.nn.Parameter(torch.randn(*shape) * std)


params = {"emb": P_((V, C)), "norm": torch.nn.Parameter(torch.ones(C))}
for l in range(L):
    for n, s in [("q", (H * D, C)), ("k", (KV * D, C)), ("v", (KV * D, C)), ("o", (C, H * D)),
                 ("g", (FF, C)), ("u", (FF, C)), ("d", (C, FF))]:
        params[f"{l}.{n}"] = P_(s)
    for n, s in [("n1", C), ("n2", C), ("qn", D), ("kn", D)]:
        params[f"{l}.{n}"] = torch.nn.Parameter(torch.ones(s))


def lin(x, name):
    return F.linear(fq_act(x), fq_weight(params[name]))


def forward(ids):
    emb = params["emb"] if a.fp else STE.apply(params["emb"], int4_groups(params["emb"]).detach())
    x = emb[ids]
    hs = [x]
    for l in range(L):
        h = rms(x, params[f"{l}.n1"])
        q = lin(h, f"{l}.q").view(B, T, H, D).transpose(1, 2)
        k = lin(h, f"{l}.k").view(B, T, KV, D).transpose(1, 2)
        v = lin(h, f"{l}.v").view(B, T, KV, D).transpose(1, 2)
        q, k = rope(rms(q, params[f"{l}.qn"])), rope(rms(k, params[f"{l}.kn"]))
        k, v = fq_kv(k), fq_kv(v)
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        sc = (q @ k.transpose(-1, -2)) / math.sqrt(D)  # torch 1.13 (Debian 12) has no fused SDPA
        att = torch.softmax(sc.masked_fill(causal, float("-inf")), -1) @ v
        x = x + lin(att.transpose(1, 2).reshape(B, T, H * D), f"{l}.o")
        h = rms(x, params[f"{l}.n2"])
        x = x + lin(F.silu(lin(h, f"{l}.g")) * lin(h, f"{l}.u"), f"{l}.d")
        hs.append(x)
    x = rms(x, params["norm"])
    hs[-1] = x
    return F.linear(fq_act(x), emb), hs


ids = torch.randint(0, V, (B, T + 1))
t_hidden = [torch.randn(B, T, C).bfloat16() for _ in range(L + 1)]
t_ids = torch.randint(0, V, (B, T, K))
t_logp = torch.log_softmax(torch.randn(B, T, K + 1), -1)  # top-K + tail
t_ent = torch.rand(B, T) * 4
opt = torch.optim.AdamW(params.values(), lr=5e-4, weight_decay=0.01)


def step():
    logits, hs = forward(ids[:, :T])
    ce = F.cross_entropy(logits.reshape(-1, V), ids[:, 1:].reshape(-1))
    if a.fp:
        opt.zero_grad(set_to_none=True)
        ce.backward()
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        opt.step()
        return float(ce)
    afd = sum(F.mse_loss(hs[l], t_hidden[l].float()) for l in (1, 3, 5)) / 3
    logq = torch.log_softmax(logits, -1)
    top = logq.gather(-1, t_ids)
    tail = torch.log1p(-top.exp().sum(-1).clamp(max=1 - 1e-6))
    s_bins = torch.cat([top, tail[..., None]], -1)
    t_p = t_logp.exp()
    fkl = (t_p * (t_logp - s_bins)).sum(-1)
    rkl = (s_bins.exp() * (s_bins - t_logp)).sum(-1)
    lam = (t_ent.clamp(max=math.log(16)) / math.log(16))
    eakld = (lam * fkl + (1 - lam) * rkl).mean()
    loss = 0.1 * ce + 0.1 * afd + 2.0 * eakld
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
    opt.step()
    return float(loss)


times = []
for i in range(a.steps):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
med = statistics.median(times[2:])
print(f"torch {torch.__version__}, {a.shape} shape, {'pretrain (fp32)' if a.fp else 'QAD'} step, {a.threads} threads: median step {med*1000:.0f} ms over steps 3..{a.steps}, "
      f"{B*T/med:.0f} tokens/s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f} MiB")
