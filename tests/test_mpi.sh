#!/usr/bin/env bash
# Data-parallel checks under Open MPI (`make MPI=1 test-mpi`): the "mpi" doctest suite with
# one process (the ranks of a parallel dump played in turn) and with `mpirun -np 2` on this
# machine (a real parallel teacher dump and 2-rank QAD against one process, resume with
# another N), then the CLI: `razor teacher` under 2 ranks writes the same store as 1.
# Ranks run one OpenMP thread each so two ranks fit a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-mpi}
TESTS=$BUILD/razor_tests
RAZOR=${RAZOR_BIN:-$BUILD/razor}
MPIRUN=(mpirun --oversubscribe --allow-run-as-root -np 2 -x OMP_NUM_THREADS=1 -x RAZOR_MPI_DIR)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/razor-mpi.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=1 RAZOR_MPI_DIR="$WORK/dp"

echo "== mpi suite, 1 process"
"$TESTS" -ts=mpi
echo "== mpi suite, mpirun -np 2"
timeout 300 "${MPIRUN[@]}" "$TESTS" -ts=mpi
echo "test-mpi: passed"
