#!/usr/bin/env bash
# Installs the Debian packages razor builds and tests with, when missing.
# `make` itself needs only g++ and OpenMP (part of g++); doctest-dev is for the test suite.
# Usage: tools/install_deps.sh [--test] [--fuzz]   (--test adds what the test references use:
#   Node.js/npm for reference tokenizers, python3-numpy for the golden forward, unicode-data;
#   --fuzz adds clang and compiler-rt, which `make fuzz` needs for -fsanitize=fuzzer)
set -euo pipefail
pkgs=(g++ make doctest-dev)
for arg in "$@"; do
  [[ "$arg" == "--test" ]] && pkgs+=(unicode-data nodejs npm python3-numpy)
  [[ "$arg" == "--fuzz" ]] && pkgs+=(clang libclang-rt-dev)
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# nodejs may come from elsewhere than Debian on some machines: accept any node/npm on PATH.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
