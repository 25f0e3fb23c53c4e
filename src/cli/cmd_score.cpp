// razor score: per-token natural-log probabilities of an id sequence under a Hugging Face
// checkpoint (full precision, no grad) or a packed .razor model (inference engine). The golden
// check against tools/ref_forward.py uses it.
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/threads.h"
#include "infer/pack.h"
#include "io/file_util.h"
#include "nn/model.h"
#include "train/evaluate_packed.h"

namespace razor {

// "1 2 3" or "1,2,3" -> ids; errors name the option and the bad token.
static std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::string tok;
  std::istringstream in(s);
  while (in >> tok) {
    size_t start = 0;
    while (start <= tok.size()) {
      size_t comma = tok.find(',', start);
      std::string t = tok.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!t.empty()) {
        char* end = nullptr;
        long long v = std::strtoll(t.c_str(), &end, 10);
        if (*end != '\0' || v < 0 || v > INT32_MAX) fail("--ids: '%s' is not a token id", t.c_str());
        ids.push_back(int32_t(v));
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return ids;
}

int cmd_score(int argc, char** argv) {
  ArgParser ap(argv[0],
               "Runs a model (Hugging Face directory: config.json + model.safetensors) on a token id sequence and "
               "prints, one per line, the natural-log probability of each next token, then `mean_nll X`.");
  ap.option("-m,--model", "", "model directory (config.json + model.safetensors) or a packed .razor file");
  ap.option("--ids", "", "token ids, separated by spaces or commas (at least 2)");
  ap.option("--threads", "0", "threads (0 = default: OMP_NUM_THREADS or all cores)");
  if (!ap.parse(argc, argv)) return 0;
  if (!ap.given("model")) fail("--model: required (a Hugging Face model directory)");
  if (!ap.given("ids")) fail("--ids: required (token ids, e.g. --ids \"1 2 3\")");
  apply_threads_option(ap, 0, 4096);
  std::vector<int32_t> ids = parse_ids(ap.str("ids"));
  if (ids.size() < 2) fail("--ids: need at least 2 token ids, got %zu", ids.size());
  const std::string path = ap.str("model");
  const bool packed = path_exists(path) && !is_directory(path);
  std::unique_ptr<Model> m;
  std::unique_ptr<PackedModel> pm;
  int64_t V = 0;
  if (packed) {
    pm.reset(new PackedModel(PackedModel::load(path)));
    pm->prepare_for_engine();
    V = pm->cfg.vocab_size;
  } else {
    m = Model::load(path, /*trainable=*/false);
    V = m->cfg.vocab_size;
  }
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] >= V)
      fail("--ids: token id %d (position %zu) is outside the vocabulary [0, %lld)", ids[i], i, (long long)V);
  if (packed && int64_t(ids.size()) > pm->cfg.max_position_embeddings)
    fail("--ids: %zu tokens exceed the context of %lld (max_position_embeddings)", ids.size(),
         (long long)pm->cfg.max_position_embeddings);
  std::vector<double> lp = packed ? packed_next_token_logprobs(*pm, ids) : next_token_logprobs(*m, ids);
  double nll = 0;
  for (double v : lp) {
    std::printf("%.9f\n", v);
    nll -= v;
  }
  std::printf("mean_nll %.9f\n", nll / double(lp.size()));
  return 0;
}

}  // namespace razor
