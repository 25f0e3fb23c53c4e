#!/usr/bin/env bash
# ARM cycle model (not part of razor; needs Debian's llvm for llvm-mca and the aarch64 cross
# compiler that tools/test_aarch64.sh installs). No ARM hardware is used: everything printed is
# MODELLED.
#   1. Compiles to assembly razor's NEON / dotprod decode kernels (the one-token four-row quads
#      and the row kernel) and prefill GEMM micro-kernels (small wrapper translation units that
#      include the kernel files and instantiate one kernel each, razor's own flags: -O2
#      -ffp-contract=off, -march=armv8-a / armv8.2-a+dotprod), and llama.cpp's
#      ggml_vec_dot_tq2_0_q8_K / ggml_vec_dot_q4_0_q8_0 (ggml-cpu/arch/arm/quants.c, gcc -O3) and
#      ggml_gemv_q4_0_4x4_q8_0 (arch/arm/repack.cpp, g++ -O3), -march=armv8.2-a+dotprod (and
#      armv8-a for the plain NEON variants).
#   2. Extracts each kernel's hot loop: the innermost loop with the most multiply instructions
#      (sdot / smull / smlal), and for razor's kernels also the rest of the enclosing group loop
#      (the per-group epilogue), counted once per group.
#   3. Runs llvm-mca -mtriple=aarch64 with -mcpu=cortex-a76, neoverse-n1 (where the LLVM has its
#      model) and cortex-a55 on each (steady state: total cycles / iterations over 200 iterations)
#      and prints cycles per 256 weights (per token) for the decode kernels and per 256
#      multiply-adds for the GEMM micro-kernels.
#   4. A roofline for Qwen3-0.6B's shape: weight bytes per decoded token against each board's
#      memory bandwidth (assumed, see the board table below), and the modelled cycles per token
#      against its cores: estimated decode tokens/s = min(compute bound, bandwidth bound); and a
#      compute-only prefill figure for the linears from the GEMM micro-kernel.
# llvm-mca models the core only (no cache misses, no memory stalls, perfect branch prediction):
# its numbers are a lower bound on cycles, and the bandwidth side is an assumption stated below.
# Usage: tools/arm_cycle_model.sh [LLAMA_DIR (default /work/llama.cpp)] [G (default 256)]
# ARM_MCA_DUMP=DIR writes each extracted loop to DIR (to read what was modelled).
set -euo pipefail
cd "$(dirname "$0")/.."
LLAMA=${1:-/work/llama.cpp}
G=${2:-256}
# The newest Debian llvm-mca installed: LLVM has no Cortex-A76 model (-mcpu=cortex-a76 selects the
# Cortex-A57 machine model in LLVM 14 and 19: 3-wide, one load pipe), but LLVM >= 16 models the
# Neoverse N1, the server core built on the Cortex-A76 microarchitecture (4-wide decode, 2 load,
# 2 ASIMD pipes); that model is used for the A76 roofline when present (apt-get install llvm-19).
MCA=${LLVM_MCA:-$(ls /usr/bin/llvm-mca-[0-9]* 2>/dev/null | sort -t- -k3 -n | tail -1)}
MCA=${MCA:-$(command -v llvm-mca || true)}
CXX=${CROSS_CXX:-aarch64-linux-gnu-g++}
CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
[[ -n $MCA ]] || { echo "arm_cycle_model: llvm-mca not found (Debian: apt-get install llvm)" >&2; exit 1; }
command -v "$CXX" >/dev/null || { echo "arm_cycle_model: $CXX not found (tools/test_aarch64.sh installs it)" >&2; exit 1; }
[[ -f $LLAMA/ggml/src/ggml-cpu/arch/arm/quants.c ]] || { echo "arm_cycle_model: no llama.cpp sources at $LLAMA" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
RZ="-std=c++17 -O2 -ffp-contract=off -Isrc -I. -w"

# ---- razor: one extern "C" function per kernel ----
cat > "$W/rz_dotprod.cpp" <<'CPP'
#include "kernels/qgemm_dotprod.cpp"
#include "kernels/qgemm_gemm_dotprod.cpp"
namespace razor {
extern "C" void rz_gemv_t2_sdot(const QgemmArgs& a, int64_t i) { row_tokens_neon<DotSdot, RowKind::Ternary2, 1>(a, i, 0); }
extern "C" void rz_gemv_q4_sdot(const QgemmArgs& a, int64_t i) { row_tokens_neon<DotSdot, RowKind::Int4, 1>(a, i, 0); }
extern "C" void rz_quad_t2_sdot(const QgemmArgs& a, int64_t i) { quad_n1_neon<DotSdot, 0>(a, i); }
extern "C" void rz_quad_q4_sdot(const QgemmArgs& a, int64_t i) { quad_n1_neon<DotSdot, 15>(a, i); }
extern "C" void rz_gemm_sdot(const uint8_t* t, int64_t K, int G, const uint8_t* b, float* c) { MicroSdot::block(t, K, G, b, c); }
}
CPP
cat > "$W/rz_neon.cpp" <<'CPP'
#include "kernels/qgemm_neon.cpp"
#include "kernels/qgemm_gemm_neon.cpp"
namespace razor {
extern "C" void rz_gemv_t2_neon(const QgemmArgs& a, int64_t i) { row_tokens_neon<DotNeon, RowKind::Ternary2, 1>(a, i, 0); }
extern "C" void rz_gemv_q4_neon(const QgemmArgs& a, int64_t i) { row_tokens_neon<DotNeon, RowKind::Int4, 1>(a, i, 0); }
extern "C" void rz_quad_t2_neon(const QgemmArgs& a, int64_t i) { quad_n1_neon<DotNeon, 0>(a, i); }
extern "C" void rz_quad_q4_neon(const QgemmArgs& a, int64_t i) { quad_n1_neon<DotNeon, 15>(a, i); }
extern "C" void rz_gemm_neon(const uint8_t* t, int64_t K, int G, const uint8_t* b, float* c) { MicroNeon::block(t, K, G, b, c); }
}
CPP
"$CXX" $RZ -march=armv8.2-a+dotprod -S "$W/rz_dotprod.cpp" -o "$W/rz_dotprod.s"
"$CXX" $RZ -march=armv8-a -S "$W/rz_neon.cpp" -o "$W/rz_neon.s"
LQ="$LLAMA/ggml/src/ggml-cpu/arch/arm/quants.c"
"$CC" -O3 -march=armv8.2-a+dotprod -std=gnu11 -w -I"$LLAMA/ggml/include" -I"$LLAMA/ggml/src" \
  -I"$LLAMA/ggml/src/ggml-cpu" -S "$LQ" -o "$W/llama_dotprod.s"
"$CC" -O3 -march=armv8-a -std=gnu11 -w -I"$LLAMA/ggml/include" -I"$LLAMA/ggml/src" \
  -I"$LLAMA/ggml/src/ggml-cpu" -S "$LQ" -o "$W/llama_neon.s"
# On cores with dotprod and without i8mm (A76, A55) llama.cpp repacks Q4_0 weights 4 rows x 4
# bytes at load time and decodes with ggml_gemv_q4_0_4x4_q8_0 (ggml-cpu/arch/arm/repack.cpp).
"$CXX" -O3 -std=c++17 -march=armv8.2-a+dotprod -w -I"$LLAMA/ggml/include" -I"$LLAMA/ggml/src" \
  -I"$LLAMA/ggml/src/ggml-cpu" -S "$LLAMA/ggml/src/ggml-cpu/arch/arm/repack.cpp" -o "$W/llama_repack.s"

DUMP=${ARM_MCA_DUMP:-} MCA="$MCA" W="$W" G="$G" python3 - <<'PY'
import os, re, subprocess, sys
W, G, MCA = os.environ["W"], int(os.environ["G"]), os.environ["MCA"]
KEY = re.compile(r"^\s*(sdot|smull2?|smlal2?|sadalp|mul|mla)\b")
BR = re.compile(r"^\s*(b[a-z.]*|cbn?z|tbn?z)\s+(?:[wx]\d+,\s*)?(?:#?\d+,\s*)?(\.L\w+)\s*$")

def function(path, name):
    lines = open(path).read().split("\n")
    start = next(i for i, l in enumerate(lines) if l.startswith(name + ":"))
    end = next(i for i in range(start, len(lines)) if lines[i].strip().startswith(".size") and name in lines[i])
    return lines[start:end]

def loops(body):
    labels = {l.rstrip(":").strip(): i for i, l in enumerate(body) if re.match(r"^\.L\w+:", l)}
    out = []
    for i, l in enumerate(body):
        m = BR.match(l)
        if m and m.group(2) in labels and labels[m.group(2)] < i:
            out.append((labels[m.group(2)], i))
    return out

def insns(body, lo, hi, skip=None):
    res = []
    for i in range(lo, hi + 1):
        if skip and skip[0] <= i <= skip[1]:
            continue
        l = body[i].split("//")[0].rstrip()
        if not l.strip() or l.strip().startswith(".") or re.match(r"^\.L\w+:", l):
            continue
        res.append(l.strip())
    return res

def hot(path, name):
    """Innermost loop with the most multiply instructions, and its enclosing loop's other lines."""
    body = function(path, name)
    ls = loops(body)
    if not ls:  # a wrapper that tail-calls (or calls) the kernel's own symbol: follow it
        callee = next(m.group(1) for l in body for m in [re.match(r"^\s*bl?\s+([A-Za-z_]\w*)\s*$", l)] if m)
        return hot(path, callee)
    best = max(ls, key=lambda r: (sum(bool(KEY.match(body[i])) for i in range(r[0], r[1] + 1)), -(r[1] - r[0])))
    parents = [r for r in ls if r[0] <= best[0] and r[1] >= best[1] and r != best]
    parent = min(parents, key=lambda r: r[1] - r[0]) if parents else None
    inner = insns(body, *best)
    epi = insns(body, parent[0], parent[1], skip=best) if parent else []
    return inner, epi

def mca(code, cpu):
    if not code:
        return 0.0
    r = subprocess.run([MCA, "-mtriple=aarch64", "-mcpu=" + cpu, "-iterations=200"], input="\n".join(code) + "\n",
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("llvm-mca failed on %s:\n%s" % (cpu, r.stderr[:2000]))
    it = int(re.search(r"Iterations:\s+(\d+)", r.stdout).group(1))
    cyc = int(re.search(r"Total Cycles:\s+(\d+)", r.stdout).group(1))
    return cyc / it

# name, asm, symbol, inner iterations per 256 weights, epilogues (group loop rest) per 256, unit
blocks = G // 64
kernels = [
    ("razor GEMV row ternary2 (dotprod)", "rz_dotprod.s", "rz_gemv_t2_sdot", 4, 256 / G, "256 w"),
    ("razor GEMV row int4 (dotprod)", "rz_dotprod.s", "rz_gemv_q4_sdot", 4, 256 / G, "256 w"),
    ("razor GEMV quad ternary2 (dotprod)", "rz_dotprod.s", "rz_quad_t2_sdot", 4, 256 / G / 4, "256 w"),
    ("razor GEMV quad int4 (dotprod)", "rz_dotprod.s", "rz_quad_q4_sdot", 4, 256 / G / 4, "256 w"),
    ("razor GEMV row ternary2 (NEON)", "rz_neon.s", "rz_gemv_t2_neon", 4, 256 / G, "256 w"),
    ("razor GEMV row int4 (NEON)", "rz_neon.s", "rz_gemv_q4_neon", 4, 256 / G, "256 w"),
    ("razor GEMV quad ternary2 (NEON)", "rz_neon.s", "rz_quad_t2_neon", 4, 256 / G / 4, "256 w"),
    ("razor GEMV quad int4 (NEON)", "rz_neon.s", "rz_quad_q4_neon", 4, 256 / G / 4, "256 w"),
    ("llama.cpp TQ2_0 vec_dot (dotprod)", "llama_dotprod.s", "ggml_vec_dot_tq2_0_q8_K", None, 0, "256 w"),
    ("llama.cpp Q4_0 vec_dot (dotprod)", "llama_dotprod.s", "ggml_vec_dot_q4_0_q8_0", None, 0, "256 w"),
    ("llama.cpp Q4_0 repacked 4x4 GEMV (dotprod)", "llama_repack.s", "ggml_gemv_q4_0_4x4_q8_0", None, 0, "256 w"),
    ("llama.cpp TQ2_0 vec_dot (NEON)", "llama_neon.s", "ggml_vec_dot_tq2_0_q8_K", None, 0, "256 w"),
    ("llama.cpp Q4_0 vec_dot (NEON)", "llama_neon.s", "ggml_vec_dot_q4_0_q8_0", None, 0, "256 w"),
    # one group epilogue (convert, scale, add into the fp32 tile) per G/4 steps of 256 MACs
    ("razor GEMM micro-kernel (dotprod, 16x4)", "rz_dotprod.s", "rz_gemm_sdot", 1, 4 / G, "256 MAC"),
    ("razor GEMM micro-kernel (NEON, 8x4 x2)", "rz_neon.s", "rz_gemm_neon", 1, 4 / G, "256 MAC"),
]
res = {}
probe = subprocess.run([MCA, "-mtriple=aarch64", "-mcpu=neoverse-n1"], input="add x0, x0, 1\n", capture_output=True, text=True)
n1 = "N1Unit" in probe.stdout
CPUS = ["cortex-a76", "neoverse-n1", "cortex-a55"] if n1 else ["cortex-a76", "cortex-a55"]
ver = subprocess.run([MCA, "--version"], capture_output=True, text=True).stdout
print("%s (%s), G = %d; cycles per 256 weights of one token (GEMV) or per 256 multiply-adds (GEMM)" % (
    MCA, re.search(r"version [\d.]+", ver).group(0), G))
print("cortex-a76 = LLVM's Cortex-A57 model" + ("; neoverse-n1 = the A76-derived core's own model" if n1 else
      " (no Neoverse N1 model in this LLVM: install llvm-19 for one)"))
print("%-42s %5s %5s" % ("kernel", "insn", "MACs") + "".join(" %11s" % c for c in CPUS))
for name, asm, sym, per256, epi256, unit in kernels:
    inner, epi = hot(os.path.join(W, asm), sym)
    if os.environ.get("DUMP"):  # the extracted loops, for reading
        with open(os.path.join(os.environ["DUMP"], sym + "_" + asm.replace(".s", "") + ".s"), "w") as f:
            f.write("# inner loop\n" + "\n".join(inner) + "\n# rest of the enclosing loop\n" + "\n".join(epi) + "\n")
    # weights (MACs) per inner iteration: SDOT = 16, SMULL/SMLAL(2) = 8.
    macs = 16 * sum(1 for l in inner if l.startswith("sdot")) + 8 * sum(1 for l in inner if re.match(r"sm(ull|lal)2?\b", l))
    row, parts = [], []
    for cpu in CPUS:
        ci = mca(inner, cpu) * 256 / macs  # the inner loop, per 256 weights (MACs)
        # razor's per-group epilogue, once per group (of one row, or of four rows for the quads:
        # stored per row-group)
        ce = (mca(epi, cpu) * epi256 * G / 256) if epi256 else 0.0
        parts.append((ci, ce))
        row.append(ci + ce * 256 / G)
    res[name] = parts
    print("%-42s %5d %5d" % (name, len(inner), macs) + "".join(" %11.1f" % c for c in row))
with open(os.path.join(W, "cycles.txt"), "w") as f:
    # per kernel: inner cycles per 256 and epilogue cycles per group, for the A76 estimate (the
    # N1 model where present) and the A55
    a76 = CPUS.index("neoverse-n1") if n1 else 0
    for k, v in res.items():
        f.write("%s\t%.3f\t%.3f\t%.3f\t%.3f\t%s\n" % (k, v[a76][0], v[a76][1], v[-1][0], v[-1][1],
                                                      "neoverse-n1" if n1 else "cortex-a76 (A57 model)"))
PY

# ---- Roofline: Qwen3-0.6B shape, decode of one token ----
W="$W" python3 - <<'PY'
import os
cyc = {}
for l in open(os.path.join(os.environ["W"], "cycles.txt")):
    k, i0, e0, i1, e1, a76model = l.rstrip("\n").split("\t")
    cyc[k] = ((float(i0), float(e0)), (float(i1), float(e1)))

def c256(k, core, G=256):  # cycles per 256 weights at group size G (razor: one epilogue per group)
    i, e = cyc[k][core]
    return i + e * 256 / G
# Qwen3-0.6B: C 1024, 28 layers, q 16 x 128, kv 8 x 128, F 3072, V 151936 (tied lm_head).
C, L, Q, KV, F, V = 1024, 28, 2048, 1024, 3072, 151936
lin = L * (C * Q + 2 * C * KV + Q * C + 3 * C * F)  # q, k, v, o, gate, up, down
head = V * C
boards = [  # name, core, cores, GHz, theoretical GB/s, sustained fraction assumed
    ("Raspberry Pi 5 (4x Cortex-A76 2.4 GHz, LPDDR4X-4267 x32: 17.1 GB/s; cycles: " + a76model + ")", 0, 4, 2.4, 17.1, 0.6),
    ("RK3566 board (4x Cortex-A55 1.8 GHz, LPDDR4-2112 x32: 8.4 GB/s)", 1, 4, 1.8, 8.4, 0.6),
]
# razor's decode runs one token's ternary2 / int4 rows four at a time (quad_n1_neon)
t2, q4 = "razor GEMV quad ternary2 (dotprod)", "razor GEMV quad int4 (dotprod)"
q4r = "llama.cpp Q4_0 repacked 4x4 GEMV (dotprod)"  # what llama.cpp runs for Q4_0 on these cores
models = [  # name, bytes/token, cycles/token on core i
    ("razor 1.58-bit (ternary2 G256, int4 head)", lin * 2.0625 / 8 + head * 4.0625 / 8,
     lambda i: lin / 256 * c256(t2, i) + head / 256 * c256(q4, i)),
    ("razor 1.88-bit (mixed8 G64, int4 head)", lin * (7 * 2.25 + 4.25) / 8 / 8 + head * 4.25 / 8,
     lambda i: lin / 256 * (7 * c256(t2, i, 64) + c256(q4, i, 64)) / 8 + head / 256 * c256(q4, i, 64)),
    ("razor 4-bit (int4 G256)", (lin + head) * 4.0625 / 8, lambda i: (lin + head) / 256 * c256(q4, i)),
    ("llama.cpp TQ2_0 (Q4_0 tied head)", lin * 2.0625 / 8 + head * 4.5 / 8,
     lambda i: lin / 256 * c256("llama.cpp TQ2_0 vec_dot (dotprod)", i) + head / 256 * c256(q4r, i)),
    ("llama.cpp Q4_0 (repacked 4x4)", (lin + head) * 4.5 / 8, lambda i: (lin + head) / 256 * c256(q4r, i)),
]
print()
print("Decode roofline, Qwen3-0.6B shape (%.0fM linear + %.0fM lm_head weights per token; KV cache, attention," % (lin / 1e6, head / 1e6))
print("norms and activation quantisation not counted). compute = cores x GHz / modelled cycles per token;")
print("memory = sustained bandwidth (theoretical x assumed fraction) / weight bytes per token.")
for bname, ci, cores, ghz, bw, frac in boards:
    print("\n" + bname + "; sustained bandwidth assumed %.0f%% = %.1f GB/s" % (100 * frac, bw * frac))
    print("%-44s %8s %10s %10s %10s %10s" % ("model", "MB/tok", "Mcyc/tok", "1 core", "%d cores" % cores, "memory"))
    for mname, byt, cfn in models:
        mc = cfn(ci)
        one = ghz * 1e9 / mc
        mem = bw * frac * 1e9 / byt
        print("%-44s %8.1f %10.1f %10.1f %10.1f %10.1f   -> %.1f tok/s" % (mname, byt / 1e6, mc / 1e6, one, one * cores, mem,
                                                                           min(one * cores, mem)))
    # Prefill: the linears' multiply-adds through the GEMM micro-kernel (weights unpacked once per
    # tile, activations from L1/L2: compute-bound), the lm_head once per prompt (not counted).
    for gname in ("razor GEMM micro-kernel (dotprod, 16x4)", "razor GEMM micro-kernel (NEON, 8x4 x2)"):
        mc = lin / 256 * c256(gname, ci)
        print("prefill, linears only, %-38s %8.1f Mcyc/tok -> %.0f tok/s on %d cores (GEMM micro-kernel incl. group epilogue, G 256)" % (
            gname.replace("razor GEMM micro-kernel ", ""), mc / 1e6, ghz * 1e9 / mc * cores, cores))
PY
