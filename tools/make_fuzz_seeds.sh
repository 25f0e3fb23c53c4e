#!/usr/bin/env bash
# Regenerates the committed fuzz seed corpora fuzz/seeds/<target>/ with razor itself:
# each target writes its own seeds (files made by razor's writers, a few KB) when run with
# -make_seeds=DIR. usage: make FUZZ=1 fuzz-build && tools/make_fuzz_seeds.sh [target...]
set -eu
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(cd fuzz && ls fuzz_*.cpp | sed 's/\.cpp$//'))
for t in "${targets[@]}"; do
  rm -rf "fuzz/seeds/$t"
  mkdir -p "fuzz/seeds/$t"
  "build-fuzz/$t" -make_seeds="fuzz/seeds/$t"
  echo "$t: $(ls "fuzz/seeds/$t" | wc -l) seeds, $(du -sk "fuzz/seeds/$t" | cut -f1) KB"
done
