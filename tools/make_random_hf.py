#!/usr/bin/env python3
"""Writes a random-weight Qwen3 checkpoint in Hugging Face layout (config.json,
model.safetensors in bf16, tokenizer.json), for running razor's whole chain at a real shape
without downloading a model. Weights ~ N(0, std), norm weights 1, as an untrained model.

usage: tools/make_random_hf.py OUT_DIR --shape qwen3-0.6b|small|tiny --tokenizer tokenizer.json [--seed N]

qwen3-0.6b is Qwen3-0.6B's shape (28 layers, C 1024, 16/8 heads of 128, FFN 3072, vocab
151936, tied embeddings); small is issue 23's training-speed shape (8 layers, C 512, 8/4 heads
of 64, FFN 1536, vocab 8192); tiny is 2 layers, C 64, FFN 128 with the tokenizer's vocabulary.
Needs python3 with numpy (Debian python3-numpy). Writes to OUT_DIR.tmp and renames.
"""
import argparse
import json
import os
import shutil
import struct

import numpy as np

SHAPES = {
    "qwen3-0.6b": dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                       head_dim=128, intermediate_size=3072, vocab_size=151936, max_position_embeddings=40960,
                       rope_theta=1000000.0),
    "small": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4, head_dim=64,
                  intermediate_size=1536, vocab_size=8192, max_position_embeddings=1024, rope_theta=10000.0),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                 intermediate_size=128, vocab_size=None, max_position_embeddings=1024, rope_theta=10000.0),
}


def bf16_bytes(a):
    """float32 array -> bf16 bytes, round to nearest even."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    r = ((u >> 16) & 1) + 0x7FFF
    return ((u + r) >> 16).astype(np.uint16).tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--tokenizer", required=True, help="tokenizer.json to copy (its vocabulary must fit)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--std", type=float, default=0.02)
    a = ap.parse_args()

    with open(a.tokenizer, "rb") as f:
        tok = json.load(f)
    n_tok = len(tok["model"]["vocab"]) + sum(1 for t in tok.get("added_tokens", []) if t["id"] >= len(tok["model"]["vocab"]))
    s = dict(SHAPES[a.shape])
    if s["vocab_size"] is None:
        s["vocab_size"] = n_tok
    if n_tok > s["vocab_size"]:
        raise SystemExit(f"make_random_hf: {a.tokenizer} has {n_tok} tokens, more than the shape's vocabulary {s['vocab_size']}")
    eos = next((t["id"] for t in tok.get("added_tokens", []) if t["content"] in ("<|im_end|>", "<|endoftext|>")), None)
    cfg = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", **s, "hidden_act": "silu",
           "rms_norm_eps": 1e-06, "tie_word_embeddings": True, "attention_bias": False, "bos_token_id": None,
           "eos_token_id": eos, "torch_dtype": "bfloat16"}

    C, L, H, K, D, F, V = (s[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                           "num_key_value_heads", "head_dim", "intermediate_size", "vocab_size"))
    shapes = [("model.embed_tokens.weight", (V, C))]
    for l in range(L):
        p = f"model.layers.{l}."
        shapes += [(p + "input_layernorm.weight", (C,)), (p + "self_attn.q_proj.weight", (H * D, C)),
                   (p + "self_attn.k_proj.weight", (K * D, C)), (p + "self_attn.v_proj.weight", (K * D, C)),
                   (p + "self_attn.o_proj.weight", (C, H * D)), (p + "self_attn.q_norm.weight", (D,)),
                   (p + "self_attn.k_norm.weight", (D,)), (p + "post_attention_layernorm.weight", (C,)),
                   (p + "mlp.gate_proj.weight", (F, C)), (p + "mlp.up_proj.weight", (F, C)),
                   (p + "mlp.down_proj.weight", (C, F))]
    shapes.append(("model.norm.weight", (C,)))

    header, off = {}, 0
    for name, shp in shapes:
        n = int(np.prod(shp)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shp), "data_offsets": [off, off + n]}
        off += n
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)

    tmp = a.out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    rng = np.random.default_rng(a.seed)
    with open(os.path.join(tmp, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name, shp in shapes:
            if len(shp) == 1:
                f.write(bf16_bytes(np.ones(shp, np.float32)))
            else:  # in row blocks: the 0.6B embedding alone is 155 M values
                rows = max(1, (1 << 22) // shp[1])
                for r0 in range(0, shp[0], rows):
                    n = min(rows, shp[0] - r0)
                    f.write(bf16_bytes(rng.standard_normal((n, shp[1]), dtype=np.float32) * a.std))
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shutil.copyfile(a.tokenizer, os.path.join(tmp, "tokenizer.json"))
    shutil.rmtree(a.out, ignore_errors=True)
    os.rename(tmp, a.out)
    nparams = sum(int(np.prod(s)) for _, s in shapes)
    print(f"make_random_hf: {a.out}: {a.shape}, {nparams / 1e6:.1f} M parameters, vocab {V}")


if __name__ == "__main__":
    main()
