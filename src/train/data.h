// Training data for pretrain / teacher / train: turns a `--data` argument into a pair of
// memory-mapped token shards (train, valid), building and caching them on first use.
//   --data default        the default corpus (data/corpus/{train,valid}.txt, fetched by
//                         tools/fetch_corpus.sh, which razor runs when they are missing) with the
//                         built-in task suite's training documents (train/tasks.h) mixed into the
//                         training split at kDefaultTaskMix; validation: the corpus's alone
//   --data DIR            DIR/train.txt and DIR/valid.txt (documents separated by empty lines),
//                         used as they are: `razor tasks --write DIR` writes such a pair
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

#include "train/tasks.h"

namespace razor {

struct PreparedData {
  std::string train_shard;  // path of a token shard
  std::string valid_shard;  // "" when the source has no validation split
  std::string description;  // for logs and run.json
};

// Task documents mixed into the default corpus's training split: their share of its bytes,
// the weight of the knowledge documents among them (TaskSuiteConfig::knowledge_weight) and the
// suite's seed. The default teacher's last stage trained on this very mix (data/README.md), so
// `--data default` distils the student on the teacher's own data.
constexpr double kDefaultTaskMix = 0.6;
constexpr double kDefaultKnowledgeWeight = 4.0;
constexpr uint64_t kDefaultTaskSeed = 1234;

// The suite configuration of the default mix (its seed and knowledge weight; the world's size
// is TaskSuiteConfig's default): what `--data default` builds, its cache key, and the defaults
// of `razor tasks --write`.
inline TaskSuiteConfig default_mix_suite() {
  TaskSuiteConfig cfg;
  cfg.seed = kDefaultTaskSeed;
  cfg.knowledge_weight = kDefaultKnowledgeWeight;
  return cfg;
}

PreparedData prepare_data(const std::string& data, const std::string& tokenizer_path,
                          const std::string& cache_dir = "data/cache", bool records = false);

// Directory of the default corpus text (data/corpus, or $RAZOR_CORPUS_DIR).
std::string default_corpus_dir();

}  // namespace razor
