#!/usr/bin/env bash
# Runs each libFuzzer target in build-fuzz/ for a bounded time over its committed seeds
# (fuzz/seeds/<target>/) plus the corpus it grew before (build-fuzz/corpus/<target>/), and
# prints one summary line per target. Exit status 1 when any target found a crash; the
# reproducer is left in build-fuzz/crashes/<target>/ (replay: build-fuzz/<target> <file>).
# usage: tools/run_fuzz.sh SECONDS target...   (make fuzz calls it)
set -u
secs=${1:-30}; shift
status=0
summary=()
for t in "$@"; do
  bin=build-fuzz/$t
  [ -x "$bin" ] || { echo "run_fuzz: $bin missing (make FUZZ=1 fuzz-build)"; exit 2; }
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/crashes/$t"
  seeds=fuzz/seeds/$t
  [ -d "$seeds" ] || seeds=
  log=build-fuzz/$t.log
  # -rss_limit_mb / -malloc_limit_mb: a loader that allocates what a header claims before
  # checking it against the file size is a finding, not an out-of-memory kill.
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/crashes/$t/" "build-fuzz/corpus/$t" $seeds >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  if [ $rc -ne 0 ]; then
    status=1
    summary+=("$t: FAILED (rc $rc) -- see $log and build-fuzz/crashes/$t/")
  else
    summary+=("$t: ok, ${runs:-?} runs in ${secs}s, coverage ${cov:-?} edges")
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
