#!/usr/bin/env bash
# Cross-builds razor for aarch64 and runs the test suite under qemu-user with `-cpu max`
# (NEON + dotprod), so the ARM kernel tiers are tested on an x86 machine.
# Usage: tools/test_aarch64.sh [doctest args, e.g. -ts=qgemm]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  echo "installing the aarch64 cross compiler and qemu-user"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq g++-aarch64-linux-gnu qemu-user
fi
make CROSS=aarch64 -j"${JOBS:-2}"
make CROSS=aarch64 test TEST_ARGS="$*"
