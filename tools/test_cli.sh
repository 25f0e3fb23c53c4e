#!/usr/bin/env bash
# Bad command lines for every razor command: each must exit non-zero (1, never a signal:
# status < 128), print a `razor: error:` line naming what is wrong, and finish within
# TIMEOUT seconds (a bad value must be rejected before any real work starts). Then
# `razor <command> --help` must succeed for every command in `razor --help`.
# A command that is still a stub ("not built yet") is reported as SKIP.
# usage: tools/test_cli.sh [path/to/razor]     (default ./razor; exit 1 on any failure)
# Run from the repository root. tests/test_hardening.cpp runs it when ./razor exists.
set -u
RAZOR=${1:-./razor}
TIMEOUT=${TIMEOUT:-30}
[ -x "$RAZOR" ] || { echo "test_cli: $RAZOR not found (make first)"; exit 2; }
RAZOR=$(realpath "$RAZOR")
tmp=$(mktemp -d /tmp/razor_cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
printf 'not json' >"$tmp/bad.json"
: >"$tmp/empty.txt"

pass=0 fail=0 skip=0
# One row: the substring the error line must contain ("-": any), then the arguments.
check() {
  local want=$1; shift
  local out rc
  out=$(cd "$tmp" && timeout "$TIMEOUT" "$RAZOR" "$@" 2>&1 </dev/null)
  rc=$?
  if grep -q "not built yet" <<<"$out"; then
    skip=$((skip + 1)); echo "SKIP  razor $* (command not built yet)"; return
  fi
  local why=
  if [ $rc -eq 124 ]; then why="timed out after ${TIMEOUT}s (value not rejected up front?)"
  elif [ $rc -ge 128 ]; then why="killed by signal $((rc - 128))"
  elif [ $rc -eq 0 ]; then why="exit status 0"
  elif ! grep -q '^razor: error: ' <<<"$out"; then why="no 'razor: error:' line"
  elif [ "$want" != "-" ] && ! grep -qF -- "$want" <<<"$out"; then why="error does not mention '$want'"
  elif grep -qiE 'AddressSanitizer|runtime error|Assertion|terminate called' <<<"$out"; then why="sanitizer/assert output"
  fi
  if [ -n "$why" ]; then
    fail=$((fail + 1)); echo "FAIL  razor $*: $why (rc $rc)"; sed 's/^/      | /' <<<"$out" | head -5
  else
    pass=$((pass + 1))
  fi
}

# Top level.
check "unknown command" no-such-command
check "unknown command" ""
check "unknown command" --no-such-flag

# Every command: an unknown flag, a flag given a value, an option missing its value.
for c in train generate bench pretrain teacher quantize eval score pack export tokenize plan; do
  check "--no-such-flag" "$c" --no-such-flag
  check "-" "$c" --no-such-flag=1
  check "-" "$c" --help=yes
done

# bench (gemm, gemv, qgemm; the model benchmark)
check "--m" bench gemm --m 0
check "--m" bench gemm --m -5
check "--m" bench gemm --m abc
check "--m" bench gemm --m 12x
check "--m" bench gemm --m 99999999999999999999999
check "--n" bench gemm --n 2000000
check "--m/--n/--k" bench gemm --m 1000000 --n 1000000 --k 1000
check "--repeat" bench gemm --repeat 0 --m 8 --n 8 --k 8
check "--threads" bench gemm --threads 0 --m 8 --n 8 --k 8
check "--threads" bench gemm --threads -1 --m 8 --n 8 --k 8
check "isa" bench gemm --isa sse9 --m 8 --n 8 --k 8
check "isa" bench gemm --isa ""
check "--m" bench gemm --m
check "--trans-a" bench gemm --trans-a=1
check "unexpected argument" bench gemm extra
for k in gemv qgemm; do
  check "layout" bench $k --layout ternary9
  check "--rows" bench $k --rows 0
  check "--cols" bench $k --cols 7
  check "-" bench $k --cols 100
  check "--group" bench $k --group 63
  check "-" bench $k --group 96
  check "--tokens" bench $k --tokens 0
  check "--seconds" bench $k --seconds 0 --bw-mib 0
  check "--seconds" bench $k --seconds nan --bw-mib 0
  check "--seconds" bench $k --seconds inf --bw-mib 0
  check "--seconds" bench $k --seconds 1/0 --bw-mib 0
  check "--bw-mib" bench $k --bw-mib -1
  check "--rows" bench $k --rows 16777216 --cols 1048576
done

# pretrain
check "--hidden" pretrain --hidden 0
check "--hidden" pretrain --hidden 3.5
check "--layers" pretrain --layers 0
check "--heads" pretrain --heads -2
check "--batch" pretrain --batch 0
check "--seq" pretrain --seq 0
check "--steps" pretrain --steps 0
check "--lr" pretrain --lr -1
check "--lr" pretrain --lr nan
check "--lr" pretrain --lr 1e999
check "--wd" pretrain --wd x
check "--warmup" pretrain --warmup 2
check "--seed" pretrain --seed 1.5
check "--ctx" pretrain --ctx 1
check "--accum" pretrain --accum 0
check "--threads" pretrain --threads -1
check "-" pretrain --arch gpt2 --steps 1 --out "$tmp/run1"
check "-" pretrain --schedule linear --steps 1 --out "$tmp/run2"
check "-" pretrain --tokenizer "$tmp/missing.json" --steps 1 --out "$tmp/run3"
check "-" pretrain --tokenizer "$tmp/bad.json" --steps 1 --out "$tmp/run4"
check "--seq" pretrain --seq

# quantize
check "-" quantize
check "-" quantize -o "$tmp/q" --bits 5
check "-" quantize -o "$tmp/q" --bits abc
check "-" quantize -o "$tmp/q" --rho 0
check "-" quantize -o "$tmp/q" --group 0
check "-" quantize -o "$tmp/q" --beta -1
check "-" quantize -o "$tmp/q" --ptq magic
check "-" quantize -o "$tmp/q" -m "$tmp/no-model"

# eval
check "-" eval -m "$tmp/no-model"
check "-" eval --windows -1
check "-" eval --arith -3
check "-" eval --ptq magic --bits 2
check "-" eval --threads 99999
check "-" eval --data "$tmp/missing.txt"

# score
check "-" score
check "-" score -m "$tmp/no-model" --ids "1 2 3"
check "-" score --ids "1 x"
check "-" score --threads -4

# tokenize
check "-" tokenize
check "-" tokenize -t "$tmp/missing.json" hello
check "-" tokenize -t "$tmp/bad.json" hello
check "-" tokenize -t "$tmp/empty.txt" hello
check "--vocab" tokenize --train -f "$tmp/empty.txt" -o "$tmp/t.json" --vocab 10
check "--vocab" tokenize --train -f "$tmp/empty.txt" -o "$tmp/t.json" --vocab 99999999999
check "--min-frequency" tokenize --train -f "$tmp/empty.txt" -o "$tmp/t.json" --min-frequency 0
check "-" tokenize --train -o "$tmp/t.json"
check "-" tokenize -f "$tmp/missing.txt" -t "$tmp/bad.json"
# With a real (tiny) tokenizer: bad ids to decode.
printf 'hello world hello world the cat the cat sat on the mat\n' >"$tmp/corpus.txt"
if "$RAZOR" tokenize --train -f "$tmp/corpus.txt" -o "$tmp/tok.json" --vocab 270 >/dev/null 2>&1; then
  check "-" tokenize -t "$tmp/tok.json" --decode "1 99999"
  check "-" tokenize -t "$tmp/tok.json" --decode "-1"
  check "-" tokenize -t "$tmp/tok.json" --decode "12abc"
  check "-" tokenize -t "$tmp/tok.json" --decode "99999999999999999999"
  check "-" tokenize -t "$tmp/tok.json" --decode "2147483648"
  check "-" tokenize -t "$tmp/tok.json" -f "$tmp/missing.txt"
else
  fail=$((fail + 1)); echo "FAIL  razor tokenize --train on a tiny corpus"
fi
# Numbers at the edges of the parsers.
check "-" score --threads 99999999999999999999
check "--seq" pretrain --seq 1e3
check "--lr" pretrain --lr 1e-400
check "--lr" pretrain --lr " "
check "--batch" pretrain --batch ""
check "-" score --ids "1,,2" -m "$tmp/no-model"
check "-" score --ids "99999999999 1" -m "$tmp/no-model"

# Good --help for every command listed by `razor --help`.
cmds=$("$RAZOR" --help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{exit}')
[ -n "$cmds" ] || { fail=$((fail + 1)); echo "FAIL  razor --help lists no commands"; }
"$RAZOR" --help >/dev/null 2>&1 || { fail=$((fail + 1)); echo "FAIL  razor --help"; }
for c in $cmds; do
  out=$(timeout "$TIMEOUT" "$RAZOR" "$c" --help 2>&1); rc=$?
  if grep -q "not built yet" <<<"$out"; then skip=$((skip + 1)); echo "SKIP  razor $c --help (not built yet)"; continue; fi
  if [ $rc -ne 0 ] || ! grep -qi "usage" <<<"$out"; then
    fail=$((fail + 1)); echo "FAIL  razor $c --help: rc $rc, no usage line"
  else
    pass=$((pass + 1))
  fi
done
for sub in gemm gemv qgemm; do
  out=$("$RAZOR" bench $sub --help 2>&1); rc=$?
  if [ $rc -ne 0 ] || ! grep -qi "usage" <<<"$out"; then fail=$((fail + 1)); echo "FAIL  razor bench $sub --help (rc $rc)"; else pass=$((pass + 1)); fi
done

echo "test_cli: $pass passed, $fail failed, $skip skipped (stub commands)"
[ $fail -eq 0 ]
