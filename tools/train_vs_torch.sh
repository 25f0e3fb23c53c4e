#!/usr/bin/env bash
# razor's training step against PyTorch configured as its users configure it (issue 23):
# tools/torch_qad_step.py (OpenBLAS-openmp + tcmalloc, OMP_NUM_THREADS = torch threads), same
# shapes and work per step, runs alternating razor / PyTorch, ROUNDS rounds, one machine, one
# session. Prints each run's tokens/s and the medians. Run it on an idle machine.
#   tools/train_vs_torch.sh [OUT_DIR]   environment: ROUNDS=3 THREADS=2 SHAPES="default small"
#                                       STEPS="qad pretrain" RAZOR=./razor (a copy lets you rebuild)
# default: the committed teacher's shape (V 4096, C 256, 6 layers, 4/2 heads, FFN 768), batch
# 8 x 256, QAD against runs/qad-rho0.125-g64-a8-kv8/store (dumped by `razor train` when missing).
# small: V 8192, C 512, 8 layers, 8/4 heads, FFN 1536, batch 4 x 512, random weights
# (tools/make_random_hf.py) and a 64-sequence store. razor's figure is the median tokens/s of
# its steps after the first 10 (QAD) or 8 (pretrain); PyTorch's the median of its steps 3..N.
# Needs: apt-get install python3-torch python3-numpy libopenblas0-openmp libtcmalloc-minimal4
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/train-vs-torch}
ROUNDS=${ROUNDS:-3} TH=${THREADS:-2} SHAPES=${SHAPES:-default small} KINDS=${STEPS:-qad pretrain}
R=${RAZOR:-./razor}
[[ -x $R ]] || make -j2 razor
mkdir -p "$OUT"
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(round(statistics.median(v)))' "$@"; }
# razor_run SHAPE KIND -> tokens/s (median of the steps after the warm-up)
razor_run() {
  local shape=$1 kind=$2 d="$OUT/run-$1-$2" skip=10 steps=30
  rm -rf "$d"
  local args=(--threads "$TH" --tasks 0 --eval-every 0 --ckpt-every 100000 --out "$d")
  if [[ $shape == small ]]; then
    args+=(--batch 4 --seq 512 --eval-windows 1); steps=16; skip=6
    [[ $kind == qad ]] && args+=(--teacher "$OUT/small/hf" --store "$OUT/small/store")
    [[ $kind == pretrain ]] && args+=(--init "$OUT/small/hf" --ctx 1024)
  else
    [[ $kind == qad ]] && args+=(--store runs/qad-rho0.125-g64-a8-kv8/store)
    [[ $kind == pretrain ]] && { args+=(--eval-windows 1); steps=24; skip=8; }
  fi
  if [[ $kind == qad ]]; then
    $R train "${args[@]}" --steps $steps --log-json "$d.json" > "$d.log" 2>&1
    python3 -c 'import json,statistics,sys; v=[json.loads(l)["tokens_per_s"] for l in open(sys.argv[1])]; print(round(statistics.median(v[int(sys.argv[2]):])))' "$d.json" $skip
  else
    $R pretrain "${args[@]}" --steps $steps > "$d.log" 2>&1
    python3 -c 'import csv,statistics,sys; v=[float(r["tokens_per_s"]) for r in csv.DictReader(open(sys.argv[1]))]; print(round(statistics.median(v[int(sys.argv[2]):])))' "$d/metrics.csv" $skip
  fi
}
torch_run() {
  local shape=$1 kind=$2 fp=() steps=12
  [[ $kind == pretrain ]] && fp=(--fp)
  [[ $shape == small ]] && steps=8
  /usr/bin/python3 tools/torch_qad_step.py --threads "$TH" --steps $steps --shape "$shape" "${fp[@]}" 2>&1 |
    tail -1 | sed -E 's/.* ([0-9]+) tokens\/s.*/\1/'
}
if [[ $SHAPES == *small* ]]; then
  [[ -f $OUT/small/hf/model.safetensors ]] ||
    /usr/bin/python3 tools/make_random_hf.py "$OUT/small/hf" --shape small --tokenizer data/teacher/tokenizer.json
  $R teacher --teacher "$OUT/small/hf" --out "$OUT/small/store" --seq 512 --sequences 64 --threads "$TH" > "$OUT/small-store.log" 2>&1
fi
echo "== $(date -u '+%Y-%m-%d %H:%M UTC')  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  $(nproc) cores  threads $TH"
echo "   ISA flags: $(grep -m1 -o -w -E 'avx512f|avx512_bf16|avx512_vnni|avx2|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "   razor $(git rev-parse --short HEAD 2>/dev/null || echo '?')  ($R)"
for shape in $SHAPES; do
  for kind in $KINDS; do
    rz=() pt=()
    for ((i = 1; i <= ROUNDS; i++)); do
      a=$(razor_run "$shape" "$kind"); b=$(torch_run "$shape" "$kind")
      rz+=("$a"); pt+=("$b")
      echo "   $shape $kind round $i: razor $a tok/s, PyTorch $b tok/s"
    done
    mr=$(median "${rz[@]}"); mp=$(median "${pt[@]}")
    echo "-- $shape $kind: razor median $mr tok/s, PyTorch median $mp tok/s, razor / PyTorch $(python3 -c "print(f'{$mr/$mp:.2f}')")x"
  done
done
