#!/usr/bin/env bash
# Pretrains a teacher on the prose corpus mixed with the built-in tasks (docs/tasks.md), resumably:
# run it again after an interruption (or with a larger STEPS) and it continues from
# OUT/checkpoint. Not run in CI; it does not touch data/teacher (copy OUT/model there yourself).
#
#   tools/pretrain_teacher.sh                   # the defaults below
#   STEPS=200 THREADS=1 OUT=/tmp/t tools/pretrain_teacher.sh   # a smoke run
#   tools/pretrain_teacher.sh --eval-every 100  # extra razor pretrain options go last
#
# Choices (environment variables, defaults):
#   MIX=0.5      task share of the training text by bytes: the corpus's 2.6 M tokens + 4.9 M task
#                tokens (digits are one token each, so ~65% of the tokens are tasks): arithmetic
#                needed ~4 M tokens of its own to reach 200/200 on 3-digit sums (docs/tasks.md)
#   STEPS=6000   x 8 x 256 tokens = 12.3 M tokens, ~1.6 epochs of the 7.5 M-token mix
#   LR=2e-3      the current teacher's peak (cosine to 0, 1% warmup), wd 0.1, clip 1.0
#   SCHEDULE=cosine  (constant: resumable in segments with growing STEPS without changing the curve)
#   shape        the default teacher's (qwen3, hidden 256, 6 layers, 4/2 heads, FFN 768, ctx 512;
#                5.8 M parameters) and its tokenizer, so `razor train` can use the result as is
#   KNOWLEDGE=1  weight of the knowledge documents (razor tasks --knowledge; stages 1-2 used 1,
#                stages 3-5 and --data default 4)
#   PEOPLE=300   people in the knowledge world (razor tasks --people; the built-in suite's default)
#   INIT=        continue from this checkpoint directory (razor pretrain --init) instead of a
#                random init: how the current teacher was made (data/README.md)
#   THREADS=2, SEED=1, OUT=runs/teacher-tasks, DATA=runs/tasks-mix (the written mix and JSONL)
#   RAZOR=./razor  the binary (a copy keeps a long run safe from rebuilds of ./razor)
# At the end razor pretrain prints validation perplexity (the corpus's validation windows, as
# before) and 50 held-out items of every task; score more with
#   ./razor eval -m OUT/model --task DATA/arith.jsonl,DATA/word.jsonl,...
set -euo pipefail
cd "$(dirname "$0")/.."
MIX=${MIX:-0.5}
STEPS=${STEPS:-6000}
LR=${LR:-2e-3}
SCHEDULE=${SCHEDULE:-cosine}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
PEOPLE=${PEOPLE:-300}
KNOWLEDGE=${KNOWLEDGE:-1}
INIT=${INIT:-}
OUT=${OUT:-runs/teacher-tasks}
DATA=${DATA:-runs/tasks-mix}
R=${RAZOR:-./razor}
[[ -x $R ]] || make -j2 razor
if [[ ! -f $DATA/train.txt || ! -f $DATA/valid.txt ]]; then
  "$R" tasks --write "$DATA" --mix "$MIX" --knowledge "$KNOWLEDGE" --items 500 --people "$PEOPLE"
fi
resume=()
[[ -n $INIT ]] && resume=(--init "$INIT")
[[ -f $OUT/checkpoint/state.json ]] && resume=(--resume)
start=$(date +%s)
OMP_WAIT_POLICY=passive "$R" pretrain --data "$DATA" --tokenizer data/teacher/tokenizer.json \
  --arch qwen3 --hidden 256 --layers 6 --heads 4 --kv-heads 2 --head-dim 64 --ffn 768 --ctx 512 \
  --steps "$STEPS" --lr "$LR" --schedule "$SCHEDULE" --wd 0.1 --batch 8 --seq 256 \
  --eval-every 200 --eval-windows 32 --ckpt-every 100 --seed "$SEED" --threads "$THREADS" \
  --out "$OUT" --bf16 "${resume[@]}" "$@"
echo "pretrain_teacher: $(( $(date +%s) - start )) s wall; model in $OUT/model"
