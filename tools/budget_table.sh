#!/usr/bin/env bash
# Issue 11's evidence: uniform rho vs a `razor plan` allocation at several bit budgets, as PTQ
# (W-A8-KV8 RTN) and after a short QAD, printed as a markdown table.
#   tools/budget_table.sh            (defaults below; everything lands in $OUT)
# Needs: $OUT/plan-base.json measured once, e.g.
#   ./razor plan --teacher data/teacher --budget 1.9 --windows 16 --seq 256 -o $OUT/plan-base.json
# and a teacher store (./razor teacher --out $OUT/store --sequences 2048).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${TEACHER:-data/teacher}
OUT=${OUT:-runs/budget}
STEPS=${STEPS:-64}              # QAD steps per run (8 x 256 tokens each)
BUDGETS=${BUDGETS:-"1.7 1.9 2.2 2.8"}
WINDOWS=${WINDOWS:-32}
TASKS=${TASKS:-100}
THREADS=${THREADS:-2}
R=./razor
json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
eval_row() {  # label, then razor eval options -> "ppl arith" (arith: the built-in suite's arith task)
  local j; j=$($R eval -m "$T" --windows "$WINDOWS" --tasks "$TASKS" --a8 --kv8 --json --threads "$THREADS" "$@")
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print("%.2f %.1f%%" % (j["val_ppl"], 100*j.get("tasks",{}).get("arith",{}).get("exact_match",0)))' "$j"
}
qad_row() {  # run name, then razor train options -> "ppl arith"
  local run=$OUT/qad-$1; shift
  [[ -f $run/summary.json ]] || $R train --teacher "$T" --store "$OUT/store" --out "$run" --steps "$STEPS" \
      --eval-every 0 --eval-windows "$WINDOWS" --tasks "$TASKS" --threads "$THREADS" "$@" > "$run.log" 2>&1
  python3 - "$run" <<'PY'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
print("%.2f %.1f%%" % (s["student_ppl"], 100 * s.get("student_tasks", {}).get("arith", {}).get("exact_match", 0)))
PY
}
echo "| budget | layout | bits (planned linears) | PTQ ppl | PTQ arith | QAD ppl | QAD arith |"
echo "|---|---|---|---|---|---|---|"
for B in $BUDGETS; do
  extra=(); [[ $B == 1.7 ]] && extra=(--no-scales)   # with scales the minimum is 1.835 at G 64
  $R plan --teacher "$T" --from "$OUT/plan-base.json" --budget "$B" "${extra[@]}" -o "$OUT/plan-$B.json" > "$OUT/plan-$B.log"
  pbits=$(awk '/^predicted bits/ {print $3}' "$OUT/plan-$B.log")
  urho=$(awk '/^uniform/ {print $3}' "$OUT/plan-$B.log")
  ubits=$(awk '/^uniform/ {print $5}' "$OUT/plan-$B.log")
  read -r up ua <<< "$(eval_row --rho "$urho")"
  read -r pp pa <<< "$(eval_row --rho "$urho" --plan "$OUT/plan-$B.json")"
  read -r uq uqa <<< "$(qad_row "uniform-$B" --rho "$urho")"
  read -r pq pqa <<< "$(qad_row "plan-$B" --rho "$urho" --plan "$OUT/plan-$B.json")"
  echo "| $B${extra:+ (no scales)} | uniform rho $urho | $ubits | $up | $ua | $uq | $uqa |"
  echo "| $B${extra:+ (no scales)} | plan | $pbits | $pp | $pa | $pq | $pqa |"
done
