#!/usr/bin/env python3
"""Independent numpy reimplementation of razor's Llama / Qwen3 forward (golden reference).

Reads a Hugging Face directory (config.json + model.safetensors, F32/F16/BF16) with its own
safetensors parser and prints, like `razor score`, one natural-log probability of each next
token per line, then `mean_nll X`. Everything is computed in float64.

usage: tools/ref_forward.py MODEL_DIR ID ID ...
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    data = buf[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[b:e]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            a = u.view(np.float32).astype(np.float64)
        else:
            raise SystemExit(f"{path}: tensor {name}: unsupported dtype {dt}")
        out[name] = a.reshape(info["shape"])
    return out


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, theta):
    # x [T, heads, D], rotate-half convention (HF Llama / Qwen).
    T, _, D = x.shape
    inv = 1.0 / theta ** (np.arange(0, D, 2, dtype=np.float64) / D)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]  # [T, D/2]
    cos = np.concatenate([np.cos(ang), np.cos(ang)], axis=-1)[:, None, :]
    sin = np.concatenate([np.sin(ang), np.sin(ang)], axis=-1)[:, None, :]
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    rot = np.concatenate([-x2, x1], axis=-1)
    return x * cos + rot * sin


def forward(cfg, W, ids):
    C = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    K = cfg.get("num_key_value_heads") or H
    D = cfg.get("head_dim") or C // H
    eps = cfg.get("rms_norm_eps", 1e-6)
    theta = cfg.get("rope_theta", 10000.0)
    qk_norm = cfg["model_type"] == "qwen3"
    tied = cfg.get("tie_word_embeddings", True)
    T = len(ids)
    x = W["model.embed_tokens.weight"][ids]  # [T, C]
    mask = np.triu(np.full((T, T), -np.inf), k=1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        q = (h @ W[p + "self_attn.q_proj.weight"].T).reshape(T, H, D)
        k = (h @ W[p + "self_attn.k_proj.weight"].T).reshape(T, K, D)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).reshape(T, K, D)
        if qk_norm:
            q = rmsnorm(q, W[p + "self_attn.q_norm.weight"], eps)
            k = rmsnorm(k, W[p + "self_attn.k_norm.weight"], eps)
        q, k = rope(q, theta), rope(k, theta)
        rep = H // K
        k = np.repeat(k, rep, axis=1)  # head h reads kv head h // rep
        v = np.repeat(v, rep, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(D) + mask
        s = s - s.max(axis=-1, keepdims=True)
        pr = np.exp(s)
        pr /= pr.sum(axis=-1, keepdims=True)
        a = np.einsum("hts,shd->thd", pr, v).reshape(T, H * D)
        x = x + a @ W[p + "self_attn.o_proj.weight"].T
        m = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = m @ W[p + "mlp.gate_proj.weight"].T
        u = m @ W[p + "mlp.up_proj.weight"].T
        x = x + (g / (1.0 + np.exp(-g)) * u) @ W[p + "mlp.down_proj.weight"].T
    x = rmsnorm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if tied else W["lm_head.weight"]
    return x @ head.T  # [T, V]


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    d = sys.argv[1]
    ids = [int(t) for t in sys.argv[2:]]
    with open(d + "/config.json") as f:
        cfg = json.load(f)
    W = read_safetensors(d + "/model.safetensors")
    z = forward(cfg, W, np.array(ids))
    mx = z.max(axis=-1, keepdims=True)
    logp = z - mx - np.log(np.exp(z - mx).sum(axis=-1, keepdims=True))
    lp = [logp[t, ids[t + 1]] for t in range(len(ids) - 1)]
    for v in lp:
        print(f"{v:.9f}")
    print(f"mean_nll {-np.mean(lp):.9f}")


if __name__ == "__main__":
    main()
