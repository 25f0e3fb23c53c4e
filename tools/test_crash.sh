#!/usr/bin/env bash
# Crash safety (issue 10): a training run killed with SIGKILL at random moments and resumed
# with --resume each time must reach exactly the bits of an uninterrupted run with the same
# seed, and every resume must start from the last complete checkpoint. Also: a full disk
# (RLIMIT_FSIZE, SIGXFSZ ignored) while a checkpoint is written must fail with an error naming
# the file and leave the previous checkpoint loadable.
#
#   razor train    (QAD, a tiny random teacher, its teacher store, a checkpoint every step):
#                  reference run; then a run killed KILLS times at random delays (each resume
#                  checked against the checkpoint on disk) plus one full-disk failure, then
#                  finished; per-step losses (--log-json, every field but the timings), the
#                  final checkpoint's checksums and the student weights must be identical.
#   razor pretrain the same with its metrics.csv (every column but tokens_per_s).
#
# usage: tools/test_crash.sh [path/to/razor]   (default ./razor; exit 1 on any failure)
# SEED (default 1) seeds the kill delays: a failure names it, and SEED=<it> reproduces the
# schedule (the moment a kill lands still depends on the machine's speed). KILLS (default 3).
set -u
RAZOR=${1:-./razor}
SEED=${SEED:-1}
KILLS=${KILLS:-3}
STEPS=24  # of every run below
[ -x "$RAZOR" ] || { echo "test_crash: $RAZOR not found (make first)"; exit 2; }
RAZOR=$(realpath "$RAZOR")
tmp=$(mktemp -d /tmp/razor_crash.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2
RANDOM=$SEED
export OMP_WAIT_POLICY=passive
fail=0
t_start=$(date +%s.%N)

die() { echo "test_crash: FAIL (SEED=$SEED): $*"; exit 1; }
bad() { echo "FAIL  $*"; fail=$((fail + 1)); }
ms() { date +%s%3N; }
# A random delay in [lo, hi] milliseconds, printed as seconds for sleep.
delay() { local lo=$1 hi=$2; local d=$((lo + RANDOM % (hi - lo + 1))); printf '%d.%03d' $((d / 1000)) $((d % 1000)); }
ckpt_step() {  # step of the checkpoint load_checkpoint would read (<dir>, else <dir>.old), or -1
  local f=$1/state.json
  [ -f "$f" ] || f=$1.old/state.json
  [ -f "$f" ] || { echo -1; return; }
  sed -n 's/.*"step": *\([0-9]*\).*/\1/p' "$f" | head -1
}

# ---- a small corpus, tokenizer and random teacher (seconds)
for i in $(seq 1 400); do
  echo "line $i: the quick brown fox $((i * 7 % 13)) jumps over the lazy dog $((i % 5)) and $((i * 3)) + $i = $((i * 4))."
done >corpus.txt
"$RAZOR" tokenize --train -f corpus.txt -o tok.json --vocab 320 >/dev/null 2>&1 || die "tokenize --train failed"
TEACHER_ARGS=(--tokenizer tok.json --data corpus.txt --hidden 64 --layers 2 --heads 2 --kv-heads 1 --head-dim 32
              --ffn 128 --ctx 64 --batch 2 --seq 16 --eval-every 0 --eval-windows 1 --tasks 0 --threads 2)
"$RAZOR" pretrain "${TEACHER_ARGS[@]}" --steps 2 --out teacher >teacher.log 2>&1 || { cat teacher.log; die "pretrain of the teacher failed"; }
[ -f teacher/model/config.json ] || die "no teacher/model"

# ---- one kill-and-resume experiment
# run_case NAME razor-args...   (without --out/--resume; @OUT@ in an argument becomes the run
#   directory). Reference: NAME-ref, uninterrupted. Interrupted: NAME-cut, killed KILLS times
#   at random delays, one full-disk resume after the first kill that left a checkpoint, then
#   resumed to the end.
run_case() {
  local name=$1; shift
  local ref_out=$name-ref cut_out=$name-cut
  local t0 t1 ref_ms
  local ref_args=("${@//@OUT@/$ref_out}")
  set -- "${@//@OUT@/$cut_out}"
  t0=$(ms)
  "$RAZOR" "${ref_args[@]}" --out "$ref_out" >"$name-ref.log" 2>&1 || { tail -5 "$name-ref.log"; die "$name: the reference run failed"; }
  t1=$(ms); ref_ms=$((t1 - t0))
  echo "$name: reference run ${ref_ms} ms"
  local kills=0 tries=0 resumes=0 last_step=-1 disk_full_done=0 step rc pid log
  # Until KILLS kills, at least one of them in a resumed run, and the full-disk resume.
  while { [ $kills -lt "$KILLS" ] || [ $resumes -lt 1 ] || [ $disk_full_done -eq 0 ]; } &&
        [ $tries -lt $((KILLS * 8)) ]; do
    tries=$((tries + 1))
    step=$(ckpt_step "$cut_out/checkpoint")
    local resume=()
    [ "$step" -ge 0 ] && resume=(--resume)
    if [ "$step" -ge 0 ] && [ "$step" -lt $STEPS ] && [ $disk_full_done -eq 0 ]; then
      # Full disk: files may not grow past half of params.f32, so the next checkpoint fails.
      local psize lim
      psize=$(stat -c %s "$cut_out/checkpoint/params.f32" 2>/dev/null || stat -c %s "$cut_out/checkpoint.old/params.f32")
      lim=$((psize / 2 / 1024))
      log=$name-full.log
      (trap '' XFSZ; ulimit -S -f "$lim"; exec "$RAZOR" "$@" --out "$cut_out" --resume) >"$log" 2>&1
      rc=$?
      disk_full_done=1
      if [ $rc -ne 1 ]; then bad "$name: full disk: exit status $rc, expected 1"; sed 's/^/      | /' "$log" | tail -5
      elif ! grep -q '^razor: error: .*checkpoint.tmp/params.f32: write failed: File too large' "$log"; then
        bad "$name: full disk: no 'razor: error: ...params.f32: write failed' line"; sed 's/^/      | /' "$log" | tail -5
      elif ! grep -q "previous checkpoint in .* is intact" "$log"; then
        bad "$name: full disk: the error does not say the previous checkpoint is intact"; tail -2 "$log"
      fi
      local after; after=$(ckpt_step "$cut_out/checkpoint")
      [ "$after" = "$step" ] || bad "$name: full disk: checkpoint step $step became $after"
      echo "$name: full disk at the checkpoint after step $step: $(grep -o 'razor: error: .*' "$log" | head -1 | cut -c1-150)"
      continue
    fi
    # A delay within the first half of what is left of the run (the reference's time, pro
    # rata of the steps left): the machine's speed varies, and a run that ends before its
    # kill makes the experiment start again.
    local done_steps=$((step < 0 ? 0 : step))
    local hi=$((ref_ms * (STEPS - done_steps) / STEPS / 2))
    [ $hi -ge 60 ] || hi=60
    local d; d=$(delay 30 $hi)
    log=$name-cut.$tries.log
    "$RAZOR" "$@" --out "$cut_out" "${resume[@]}" >"$log" 2>&1 &
    pid=$!
    sleep "$d"
    if kill -0 $pid 2>/dev/null; then kill -KILL $pid 2>/dev/null; fi
    { wait $pid; } 2>/dev/null; rc=$?
    if [ "$step" -ge 0 ]; then
      resumes=$((resumes + 1))
      # The resumed run names the step it started from: the checkpoint on disk, never older.
      local from
      from=$(grep -oE '(resuming .* at step|resumed from .* at step) [0-9]+' "$log" | grep -oE '[0-9]+$' | head -1)
      if [ -n "$from" ] && [ "$from" != "$step" ]; then bad "$name: resumed at step $from, the checkpoint holds step $step"; fi
      if [ -z "$from" ] && [ $rc -ne 137 ]; then bad "$name: resumed run did not say where it resumed"; fi
    fi
    if [ $rc -eq 137 ]; then
      kills=$((kills + 1))
      local now; now=$(ckpt_step "$cut_out/checkpoint")
      [ "$now" -ge "$last_step" ] || bad "$name: checkpoint went back from step $last_step to $now"
      echo "$name: kill $kills after ${d}s (checkpoint before: step $step, after: step $now)"
      last_step=$now
    elif [ $rc -eq 0 ]; then
      echo "$name: the run finished before the kill at ${d}s; starting again from nothing"
      rm -rf "$cut_out"; last_step=-1; disk_full_done=0; kills=0; resumes=0
    else
      sed 's/^/      | /' "$log" | tail -5; bad "$name: interrupted run exited with status $rc"; return
    fi
  done
  [ $kills -ge "$KILLS" ] || bad "$name: only $kills kills landed in $tries tries"
  [ $resumes -ge 1 ] || bad "$name: no kill left a checkpoint to resume from"
  [ $disk_full_done -eq 1 ] || bad "$name: the full-disk case never ran (no checkpoint before the kills ended)"
  step=$(ckpt_step "$cut_out/checkpoint")
  local resume=(); [ "$step" -ge 0 ] && resume=(--resume)
  "$RAZOR" "$@" --out "$cut_out" "${resume[@]}" >"$name-final.log" 2>&1 || { tail -5 "$name-final.log"; bad "$name: the final resume failed"; return; }
  echo "$name: $kills kills, $resumes resumes, finished from step $step"
}

same_file() {  # what, a, b
  if ! cmp -s "$2" "$3"; then bad "$1: $2 and $3 differ ($(cmp "$2" "$3" 2>&1 | head -1))"; fi
}
# Checkpoint identity: step, data cursor and the checksum of every array (params, both moments).
same_checkpoint() {
  local a=$1/checkpoint/state.json b=$2/checkpoint/state.json
  [ -f "$a" ] && [ -f "$b" ] || { bad "final checkpoint missing ($a, $b)"; return; }
  diff <(grep -E '"(step|data_cursor|n_params|params.f32|adam_m.f32|adam_v.f32)"' "$a") \
       <(grep -E '"(step|data_cursor|n_params|params.f32|adam_m.f32|adam_v.f32)"' "$b") >/dev/null ||
    bad "final checkpoints differ: $(diff "$a" "$b" | head -4 | tr '\n' ' ')"
}

# ---- razor train (QAD): a teacher store dump, then STEPS steps with a checkpoint after each
TRAIN=(train --teacher teacher/model --data corpus.txt --cache cache --steps $STEPS --batch 2 --seq 16 --sequences 32
       --topk 8 --ckpt-every 1 --eval-every 0 --eval-windows 1 --tasks 0 --threads 2 --seed 7
       --log-json @OUT@.jsonl)
run_case qad "${TRAIN[@]}"
# Per-step log without the timings: step, loss and every loss term, lambda, AFD layers, lr, grad norm.
strip_times() { sed -E 's/,"tokens_per_s":[^,}]*//; s/,"comm_s":[^,}]*//' "$1"; }
n=$(wc -l <qad-ref.jsonl)
[ "$n" -eq $STEPS ] || bad "qad: the reference log has $n steps, expected $STEPS"
if ! diff <(strip_times qad-ref.jsonl) <(strip_times qad-cut.jsonl) >qad.diff; then
  bad "qad: per-step log of the interrupted run differs from the reference:"; head -6 qad.diff
fi
same_checkpoint qad-ref qad-cut
same_file "qad: student weights" qad-ref/student/model.safetensors qad-cut/student/model.safetensors
same_file "qad: packed student" qad-ref/student.razor qad-cut/student.razor

# ---- razor pretrain: STEPS steps, a checkpoint after each
PRE=(pretrain "${TEACHER_ARGS[@]}" --steps $STEPS --ckpt-every 1 --seed 3)
run_case pre "${PRE[@]}"
cols() { cut -d, -f1-4,6 "$1"; }  # step,loss,lr,grad_norm,val_ppl (not tokens_per_s)
n=$(($(wc -l <pre-ref/metrics.csv) - 1))
[ "$n" -eq $STEPS ] || bad "pre: the reference metrics.csv has $n steps, expected $STEPS"
if ! diff <(cols pre-ref/metrics.csv) <(cols pre-cut/metrics.csv) >pre.diff; then
  bad "pre: metrics.csv of the interrupted run differs from the reference:"; head -6 pre.diff
fi
same_checkpoint pre-ref pre-cut
same_file "pre: model weights" pre-ref/model/model.safetensors pre-cut/model/model.safetensors

# ---- --resume with options that change the run is refused (naming the option), before any step
refused() {  # option-name razor-args...
  local opt=$1; shift
  local out rc; out=$("$RAZOR" "$@" 2>&1); rc=$?
  if [ $rc -ne 1 ] || ! grep -q "^razor: error: --resume: .*$opt" <<<"$out"; then
    bad "--resume with another $opt: rc $rc, expected a 'razor: error: --resume: ... $opt' line"; tail -3 <<<"$out"
  fi
}
refused seed "${TRAIN[@]//@OUT@/qad-cut}" --out qad-cut --resume --seed 8
refused lr "${PRE[@]}" --out pre-cut --resume --lr 0.01
refused seed "${PRE[@]}" --out pre-cut --resume --seed 4

echo "test_crash: $fail failed (SEED=$SEED, KILLS=$KILLS), $(( $(ms) / 1000 - ${t_start%.*} )) s"
[ $fail -eq 0 ]
