// Training data for pretrain / teacher / train: turns a `--data` argument into a pair of
// memory-mapped token shards (train, valid), building and caching them on first use.
//   --data default        the default corpus (data/corpus/{train,valid}.txt, fetched by
//                         tools/fetch_corpus.sh, which razor runs when they are missing) plus the
//                         generated arithmetic task mixed into the training split
//   --data FILE.txt       documents separated by empty lines; every 33rd document is held out
//   --data FILE.ids       one sequence of token ids per line (space-separated); every 20th
//                         line is held out
//   --data FILE.jsonl     chat / instruction records (train/chat.h), rendered with ChatML, one
//                         record per sequence, loss mask on the assistant tokens; a record is
//                         held out when its line's hash says so (chat_record_held_out, ~5%)
//   --data FILE.tok       an existing token shard (no validation split unless FILE.valid.tok exists)
// records = true (`--records`) makes .txt documents / .ids lines one sequence each too
// (padded or truncated, never windowed across; every token a target but the padding).
// Shards are cached under cache_dir, keyed by the tokenizer's hash and the source's size and
// modification time, so a changed tokenizer or text never reuses stale tokens.
// Deliberately not here: batching (train/shards.h), the model.
#pragma once
#include <string>

namespace razor {

struct PreparedData {
  std::string train_shard;  // path of a token shard
  std::string valid_shard;  // "" when the source has no validation split
  std::string description;  // for logs and run.json
};

// Arithmetic documents mixed into the default corpus: count and lines per document.
constexpr int kArithDocs = 2500;
constexpr int kArithLinesPerDoc = 8;
constexpr uint64_t kArithSeed = 1234;

PreparedData prepare_data(const std::string& data, const std::string& tokenizer_path,
                          const std::string& cache_dir = "data/cache", bool records = false);

// Directory of the default corpus text (data/corpus, or $RAZOR_CORPUS_DIR).
std::string default_corpus_dir();

}  // namespace razor
