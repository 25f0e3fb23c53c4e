#!/usr/bin/env bash
# The whole chain on chat data: a tiny random Qwen3 in Hugging Face layout, a small JSONL chat
# file (messages and prompt/response records), then
#   razor teacher -> razor train --steps 2 -> razor pack -> razor generate --chat -> razor export --gguf
# checking that every output exists and loads (the store's masks are response-only, the GGUF is
# read back by razor import). A few seconds.
# usage: tools/test_chat_chain.sh [path/to/razor] [MODEL_DIR]
#   MODEL_DIR: a tiny HF checkpoint whose tokenizer has <|im_start|>/<|im_end|> (tests/test_chat.cpp
#   writes one); without it, tools/make_random_hf.py --shape tiny makes one (needs python3-numpy)
#   with the default teacher's tokenizer (data/teacher/tokenizer.json).
# Run from the repository root; exit 1 on any failure. tests/test_chat.cpp runs it.
set -u
RAZOR=${1:-./razor}
[ -x "$RAZOR" ] || { echo "test_chat_chain: $RAZOR not found (make first)"; exit 2; }
RAZOR=$(realpath "$RAZOR")
tmp=$(mktemp -d /tmp/razor_chat.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL  $*"; echo "test_chat_chain: FAILED"; exit 1; }
run() {  # run a step, keep its output, fail with its tail
  local name=$1; shift
  if ! (cd "$tmp" && timeout 120 "$RAZOR" "$@") >"$tmp/$name.log" 2>&1; then
    tail -15 "$tmp/$name.log" | sed 's/^/      | /'
    fail "razor $*"
  fi
  echo "ok    razor $*"
}

if [ $# -ge 2 ]; then
  cp -r "$2" "$tmp/tiny"
else
  /usr/bin/python3 tools/make_random_hf.py "$tmp/tiny" --shape tiny --tokenizer data/teacher/tokenizer.json \
    >/dev/null || fail "tools/make_random_hf.py (needs python3-numpy)"
fi
# A ChatML chat template beside the tokenizer (razor checks it is ChatML; GGUF export carries it).
cat >"$tmp/tiny/tokenizer_config.json" <<'EOF'
{"chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
 "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
EOF

{
  echo '{"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+3?"}, {"role": "assistant", "content": "5"}]}'
  echo '{"messages": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "Again"}, {"role": "assistant", "content": "Hi again!"}]}'
  echo ''
  for i in $(seq 1 24); do
    echo "{\"prompt\": \"Add $i and $((i * 3)).\", \"response\": \"$i plus $((i * 3)) is $((i * 4)).\"}"
  done
} >"$tmp/chat.jsonl"

run teacher teacher --teacher tiny --data chat.jsonl --cache cache --out store --seq 48 --threads 2
# (tests/test_chat.cpp checks the store's response-only masks; here: it opens and counts.)
run stats teacher --out store --stats
grep -q "^sequences " "$tmp/stats.log" || fail "teacher --stats: no sequence count"
run train train --teacher tiny --data chat.jsonl --cache cache --store store --seq 48 --steps 2 --batch 4 \
  --out run --eval-windows 4 --arith 0 --threads 2
[ -f "$tmp/run/student/model.safetensors" ] || fail "train: run/student/model.safetensors missing"
grep -q "valid perplexity" "$tmp/train.log" || fail "train: no validation perplexity in the summary"
run pack pack -m run/student -o student.razor --a8 --kv8
[ -s "$tmp/student.razor" ] || fail "pack: student.razor missing"
run generate generate -m student.razor --chat -p "What is 2+3?" -n 6 --temp 0 --threads 2
run export export -m student.razor --gguf student.gguf --quiet
[ -s "$tmp/student.gguf" ] || fail "export: student.gguf missing"
grep -q "0 values differ" "$tmp/export.log" || fail "export: the read-back did not match"
run import import --gguf student.gguf -o back.razor --quiet
run generate2 generate -m back.razor --chat -p "Say hi" -n 4 --temp 0 --threads 2
echo "test_chat_chain: ok (teacher, train, pack, generate, export --gguf, import)"
