#!/usr/bin/env bash
# The paper's ablations at 1.88 bits, by flags only, from one shared teacher store, as one
# markdown table: A+E (adaptive AFD + EAKLD, the default), A+C (AFD + CAKLD), F+E (fixed
# layers + EAKLD), F+F (fixed layers + plain forward KL).
# Usage: tools/ablations.sh [STORE] [extra razor train options...]
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:-runs/qad-rho0.125-g64-a8-kv8/store}; shift || true
echo "| variant | flags | valid ppl | arith exact match |"
echo "|---|---|---|---|"
run() {
  local name=$1; shift
  local out=runs/ablation-$name
  ./razor train --bits 1.88 --store "$store" --out "$out" "$@" "${EXTRA[@]}" > "$out.log" 2>&1
  local ppl acc
  ppl=$(awk '/^valid perplexity/ {print $4}' "$out.log")
  acc=$(awk '/^arith exact match/ {print $5}' "$out.log")
  echo "| $name | $* | $ppl | $acc |"
}
EXTRA=("$@")
run A+E --feature adaptive --loss-logit eakld
run A+C --feature adaptive --loss-logit cakld
run F+E --feature fixed --loss-logit eakld
run F+F --feature fixed --loss-logit fkl
