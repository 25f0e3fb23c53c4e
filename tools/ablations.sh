#!/usr/bin/env bash
# The paper's ablations at 1.88 bits, by flags only, from one shared teacher store, as one
# markdown table: A+E (adaptive AFD + EAKLD, the default), A+C (AFD + CAKLD), F+E (fixed
# layers + EAKLD), F+F (fixed layers + plain forward KL).
# Usage: tools/ablations.sh [STORE] [extra razor train options...]
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:-runs/qad-rho0.125-g64-a8-kv8/store}; shift || true
echo "| variant | flags | valid ppl | arith | word | knowledge | knowledge_mc | knowledge_facts | nextsent_mc |"
echo "|---|---|---|---|---|---|---|---|"
run() {
  local name=$1; shift
  local out=runs/ablation-$name
  ./razor train --bits 1.88 --store "$store" --out "$out" "$@" "${EXTRA[@]}" > "$out.log" 2>&1
  # Task accuracies (held-out items of the built-in suite, docs/tasks.md) from summary.json.
  python3 - "$out/summary.json" "$name" "$*" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); t = s.get("student_tasks", {})
def cell(k):
    r = t.get(k)
    if not r: return "-"
    v, ci = (r["acc_norm"], r["acc_norm_ci95"]) if "acc_norm" in r else (r["exact_match"], r["exact_match_ci95"])
    return "%.1f%% ± %.1f" % (100 * v, 100 * ci)
print("| %s | %s | %.3f | %s |" % (sys.argv[2], sys.argv[3], s["student_ppl"],
      " | ".join(cell(k) for k in ["arith", "word", "knowledge", "knowledge_mc", "knowledge_facts", "nextsent_mc"])))
PY
}
EXTRA=("$@")
run A+E --feature adaptive --loss-logit eakld
run A+C --feature adaptive --loss-logit cakld
run F+E --feature fixed --loss-logit eakld
run F+F --feature fixed --loss-logit fkl
