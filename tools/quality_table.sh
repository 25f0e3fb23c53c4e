#!/usr/bin/env bash
# Issue 20's reproduction table (docs/quality.md): the teacher, post-training quantization
# (RTN, RTN-gamma, PTQTP, GPTQ, AWQ) and QAD at 4 / 2.79 / 1.88 / 1.58 bits, W-A8-KV8, G 64,
# a full-precision control (the teacher fine-tuned with CE on the same data for the same steps
# as QAD), the 1.88-bit QAD row over several seeds and the paper's ablations (A+E, A+C, F+E,
# F+F). Every row is one `razor eval --json` (perplexity on WINDOWS x 256 validation tokens and
# TASKS held-out items per built-in task); QAD students are scored as packed .razor files
# through the inference engine. Resumable: a row whose $OUT/rows/NAME.json exists is not redone,
# so run it again after an interruption (or with more SEEDS).
#
#   tools/quality_table.sh                       # everything below; the markdown table on stdout
#   ROWS="teacher ptq qad" tools/quality_table.sh   # a subset (teacher ptq qad control schedule init seeds ablations long)
#
# Choices (environment variables, defaults):
#   TEACHER=data/teacher  OUT=runs/quality  THREADS=2  WINDOWS=32  TASKS=100
#   STEPS=512    QAD (and control) steps, 8 x 256 tokens each: the default `razor train`'s run
#                (two epochs of the 2,048-sequence store)
#   SEEDS="1 2 3"  data-order seeds of the 1.88-bit rows (QAD A+E, from GPTQ's weights, the ablations)
#   SEED_BITS=1.88  the widths whose QAD A+E row the seeds block repeats over SEEDS
#   METHODS="rtn rtn-gamma ptqtp gptq awq"  BITS="4 2.79 1.88 1.58"
#   LR=5e-4      QAD's default peak learning rate; SCHEDULE=cosine its default schedule (1% warmup,
#                decay to 0); the control uses the same
#   INIT=teacher  the QAD rows' start (`razor train --init`; a row's own --init wins): the
#                published table's; razor train's default is gptq-mlp since 2026-12-08
#   STORE_DATA=  the store's data (`razor teacher --data`; default: --data default, the default
#                run's), e.g. runs/tasks-mix-k4q/train.txt: the stage-4 teacher's own mix
# One teacher store ($OUT/store, `razor teacher`, 2,048 sequences, the default run's) serves
# every QAD row. The commands behind each row are in $OUT/rows/NAME.json ("command").
set -euo pipefail
cd "$(dirname "$0")/.."
T=${TEACHER:-data/teacher}
OUT=${OUT:-runs/quality}
THREADS=${THREADS:-2}
WINDOWS=${WINDOWS:-32}
TASKS=${TASKS:-100}
STEPS=${STEPS:-512}
SEEDS=${SEEDS:-1 2 3}
SEED_BITS=${SEED_BITS:-1.88}
METHODS=${METHODS:-rtn rtn-gamma ptqtp gptq awq}
BITS=${BITS:-4 2.79 1.88 1.58}
LR=${LR:-5e-4}
SCHEDULE=${SCHEDULE:-cosine}
ROWS=${ROWS:-teacher ptq qad control schedule init seeds ablations long}
INIT=${INIT:-teacher}
R=${RAZOR:-./razor}
[[ -x $R ]] || make -j2 razor >/dev/null
mkdir -p "$OUT/rows"
want() { [[ " $ROWS " == *" $1 "* ]]; }
say() { echo "quality_table: $*" >&2; }

# row NAME GROUP LABEL -- razor eval options: scores one model into $OUT/rows/NAME.json
# (with $TRAIN_CMD as "train_command" when set: the QAD rows).
row() {
  local name=$1 group=$2 label=$3; shift 3
  local f=$OUT/rows/$name.json
  [[ -f $f ]] && return 0
  say "$name: razor eval $*"
  local t0=$SECONDS j
  j=$($R eval --windows "$WINDOWS" --tasks "$TASKS" --threads "$THREADS" --json "$@")
  python3 - "$f" "$name" "$group" "$label" "$*" "$((SECONDS - t0))" "$j" "${TRAIN_CMD:-}" <<'PY'
import json, os, sys
f, name, group, label, cmd, secs, j, train = sys.argv[1:]
r = json.loads(j)
r.update(name=name, group=group, label=label, command="razor eval " + cmd, eval_seconds=int(secs))
if train:
    r["train_command"] = train
tmp = f + ".tmp"
json.dump(r, open(tmp, "w"), indent=1)
os.replace(tmp, f)
PY
}

# qad NAME GROUP LABEL -- razor train options: trains a student from the shared store, then
# scores its student.razor.
qad() {
  local name=$1 group=$2 label=$3; shift 3
  local run=$OUT/$name
  [[ -f $OUT/rows/$name.json ]] && return 0
  if [[ ! -f $run/student.razor ]]; then
    say "$name: razor train $*"
    local t0=$SECONDS
    $R train --teacher "$T" --store "$OUT/store" --out "$run" --steps "$STEPS" --lr "$LR" --schedule "$SCHEDULE" --eval-every 0 \
      --eval-windows "$WINDOWS" --tasks 0 --threads "$THREADS" --init "$INIT" "$@" > "$run.log" 2>&1
    echo "train_seconds $((SECONDS - t0))" >> "$run.log"
  fi
  TRAIN_CMD="razor train --steps $STEPS --lr $LR --schedule $SCHEDULE --init $INIT $*" row "$name" "$group" "$label" -m "$run/student.razor"
}

if want teacher; then
  row teacher teacher "teacher (fp32)" -m "$T"
fi
if want ptq; then
  for b in $BITS; do
    for m in $METHODS; do
      row "ptq-$m-$b" "ptq-$m" "PTQ $m" -m "$T" --bits "$b" --ptq "$m" --a8 --kv8
    done
  done
fi
if want qad || want control || want schedule || want init || want seeds || want ablations; then
  if [[ ! -f $OUT/store/manifest.json ]]; then
    say "store: razor teacher (2,048 sequences)"
    $R teacher --teacher "$T" --out "$OUT/store" --sequences 2048 --threads "$THREADS" ${STORE_DATA:+--data "$STORE_DATA"} \
      > "$OUT/store.log" 2>&1
  fi
fi
if want qad; then
  for b in $BITS; do qad "qad-$b-s1" "qad" "QAD (A+E)" --bits "$b" --seed 1; done
fi
if want control; then
  if [[ ! -f $OUT/control/model/model.safetensors ]]; then
    say "control: razor pretrain --init $T (CE, full precision, $STEPS steps)"
    $R pretrain --init "$T" --tokenizer "$T/tokenizer.json" --data default --steps "$STEPS" --lr "$LR" --schedule "$SCHEDULE" \
      --batch 8 --seq 256 --eval-every 0 --ckpt-every 0 --tasks 0 --seed 1 --threads "$THREADS" \
      --out "$OUT/control" > "$OUT/control.log" 2>&1
  fi
  row control control "control: teacher + CE fine-tune, fp32" -m "$OUT/control/model"
fi
if want schedule; then
  # The learning-rate schedule of the 1.88-bit row (seed 1): QAD starts from a converged teacher.
  SCHEDULE=constant qad "qad-1.88-const-s1" "qad-1.88-sched" "QAD 1.88, constant lr $LR (the default before 2026-12-06)" \
    --bits 1.88 --seed 1
  SCHEDULE=constant LR=2e-4 qad "qad-1.88-lr2e-4-s1" "qad-1.88-sched" "QAD 1.88, constant lr 2e-4" --bits 1.88 --seed 1
  SCHEDULE=cosine LR=2e-4 qad "qad-1.88-cos-lr2e-4-s1" "qad-1.88-sched" "QAD 1.88, cosine lr 2e-4" --bits 1.88 --seed 1
fi
if want init; then
  # Issue 21's ablation: QAD from GPTQ's weights (--latent: RTN of them gives GPTQ's integers, so
  # step 0's student is the GPTQ model) instead of the teacher's.
  g=$OUT/gptq-1.88-latent
  if [[ ! -f $g/model.safetensors ]]; then
    say "init: razor quantize --ptq gptq --bits 1.88 --latent"
    $R quantize -m "$T" --ptq gptq --bits 1.88 --latent -o "$g" --threads "$THREADS" > "$g.log" 2>&1
  fi
  for s in $SEEDS; do
    qad "qad-1.88-gptqinit-s$s" "qad-1.88-init" "QAD 1.88 from GPTQ's weights" --bits 1.88 --seed "$s" --init "$g"
  done
fi
if want seeds; then
  for b in $SEED_BITS; do
    for s in $SEEDS; do qad "qad-$b-s$s" "qad-$b-seeds" "QAD $b (A+E)" --bits "$b" --seed "$s"; done
  done
fi
if want ablations; then
  for s in $SEEDS; do
    qad "abl-A+C-s$s" "abl-A+C" "A+C (AFD + CAKLD)" --bits 1.88 --seed "$s" --feature adaptive --loss-logit cakld
    qad "abl-F+E-s$s" "abl-F+E" "F+E (fixed layers + EAKLD)" --bits 1.88 --seed "$s" --feature fixed --loss-logit eakld
    qad "abl-F+F-s$s" "abl-F+F" "F+F (fixed layers + FKL)" --bits 1.88 --seed "$s" --feature fixed --loss-logit fkl
  done
fi
if want long; then
  # The 1.88-bit row trained for one and for four epochs of the store (the default run's two
  # epochs, 512 steps, are sized for 15 minutes).
  STEPS=256 qad "qad-1.88-short-s1" "qad-1.88-steps" "QAD 1.88, 256 steps (one epoch)" --bits 1.88 --seed 1
  STEPS=1024 qad "qad-1.88-long-s1" "qad-1.88-steps" "QAD 1.88, 1024 steps (four epochs)" --bits 1.88 --seed 1
fi
python3 tools/quality_table.py "$OUT/rows"
