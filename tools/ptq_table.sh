#!/usr/bin/env bash
# Post-training-quantization baselines of a model as a markdown table: full precision, then
# RTN, RTN+gamma and PTQTP at 4, 3, 2.79, 2, 1.88 and 1.58 bits (W-A8-KV8 when A8=1).
# Usage: tools/ptq_table.sh [MODEL_DIR] [WINDOWS] [TASK_ITEMS]   (defaults: data/teacher 32 100)
# (the arith column: the built-in suite's arith task, docs/tasks.md)
# BITS="4 2.79 1.88 1.58" METHODS="rtn rtn-gamma ptqtp gptq awq" choose the rows (gptq / awq
# calibrate on the default 128 x 256 training tokens); THREADS=N passes --threads N; RAZOR=path
# picks the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
m=${1:-data/teacher}; w=${2:-32}; k=${3:-100}
act=(); [[ "${A8:-0}" == 1 ]] && act=(--a8 --kv8)
[[ -n "${THREADS:-}" ]] && act+=(--threads "$THREADS")
row() {  # label, then razor eval options
  local label=$1; shift
  local j; j=$("${RAZOR:-./razor}" eval -m "$m" --windows "$w" --tasks "$k" --json "$@")
  python3 -c 'import json,sys; j=json.loads(sys.argv[2]); b=j["bits"]; print("| %s | %s | %.2f | %.1f%% |" % (sys.argv[1], "%.3f"%b if b<32 else "16 (bf16)", j["val_ppl"], 100*j.get("tasks",{}).get("arith",{}).get("exact_match",0)))' "$label" "$j"
}
echo "| model | bits/weight (with scales) | valid ppl | arith exact match |"
echo "|---|---|---|---|"
row "teacher (full precision)"
for bits in ${BITS:-4 3 2.79 2 1.88 1.58}; do
  for ptq in ${METHODS:-rtn rtn-gamma ptqtp}; do
    row "$ptq $bits-bit" --bits "$bits" --ptq "$ptq" "${act[@]}"
  done
done
