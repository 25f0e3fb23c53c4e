// `razor generate -p "..."`: streams text from a packed .razor model (default: the newest
// runs/*/student.razor), token by token, printing only complete UTF-8; tokens/s on stderr.
#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/threads.h"
#include "infer/generate.h"
#include "io/file_util.h"
#include "io/tokenizer.h"

namespace razor {

int cmd_generate(int argc, char** argv) {
  ArgParser ap("razor generate",
               "Generate text from a packed model, streamed as it is produced. Stops at the end-of-sequence token "
               "or after -n tokens. The same --seed gives the same text; --temp 0 is greedy.");
  ap.option("-p,--prompt", "", "the prompt (UTF-8, required)");
  ap.option("-m,--model", "", "packed model (.razor); default: the newest runs/*/student.razor");
  ap.option("-n,--tokens", "128", "maximum new tokens");
  ap.option("--temp", "0.8", "sampling temperature (0: greedy)");
  ap.option("--top-k", "40", "sample among the k most likely tokens (0: all)");
  ap.option("--top-p", "0.95", "nucleus: the smallest set of tokens with this probability mass (1: all)");
  ap.option("--seed", "0", "random seed of the sampler");
  ap.option("--threads", "", "threads (default: OMP_NUM_THREADS or all cores)");
  ap.flag("--chat", "wrap the prompt in the Qwen chat template (needs <|im_start|> in the tokenizer)");
  if (!ap.parse(argc, argv)) return 0;

  const std::string prompt = ap.str("--prompt");
  RZ_CHECK(ap.given("--prompt") && !prompt.empty(), "--prompt: give a non-empty prompt, e.g. -p \"Once upon a time\"");
  RZ_CHECK(valid_utf8(prompt), "--prompt: not valid UTF-8");
  std::string path = ap.str("--model");
  if (path.empty()) {
    path = latest_student();
    RZ_CHECK(!path.empty(),
             "--model: none given and no trained student found (runs/*/student.razor); run `razor train` or pass "
             "-m FILE.razor");
  }
  apply_threads_option(ap, 1, 1024);
  const int64_t n = ap.i64_in("--tokens", 1, int64_t(1) << 30);
  SamplerOptions so;
  so.temp = float(ap.f64("--temp"));
  so.top_k = int(ap.i64_in("--top-k", 0, int64_t(1) << 30));
  so.top_p = float(ap.f64("--top-p"));
  so.seed = uint64_t(ap.i64_in("--seed", 0, INT64_MAX));
  so.validate();

  RZ_CHECK(!is_directory(path),
           "--model %s: a checkpoint directory; generate runs a packed model: `razor pack -m %s --bits 4 -o "
           "model.razor` (4 bits stays close to full precision, docs/quality.md), then -m model.razor",
           path.c_str(), path.c_str());
  PackedModel pm = PackedModel::load(path);
  pm.prepare_for_engine();
  RZ_CHECK(!pm.tokenizer_json.empty(), "%s: the packed model carries no tokenizer.json (re-pack it from a checkpoint "
                                       "directory that has one)", path.c_str());
  const Tokenizer tok = Tokenizer::from_json(pm.tokenizer_json, path + ": tokenizer.json");
  std::string text = prompt;
  if (ap.on("--chat")) {
    RZ_CHECK(tok.added_id("<|im_start|>") >= 0 && tok.added_id("<|im_end|>") >= 0,
             "--chat: the model's tokenizer has no <|im_start|>/<|im_end|> tokens (not a Qwen-style chat model)");
    text = chat_prompt(prompt);
  }
  std::vector<int32_t> ids = tok.encode(text);
  RZ_CHECK(!ids.empty(), "--prompt: encodes to no tokens");
  for (int32_t id : ids)
    RZ_CHECK(id < pm.cfg.vocab_size, "%s: the tokenizer produced id %d outside the model's vocabulary %lld",
             path.c_str(), id, (long long)pm.cfg.vocab_size);
  const int64_t limit = pm.cfg.max_position_embeddings;
  RZ_CHECK(int64_t(ids.size()) < limit, "--prompt: %zu tokens do not fit the model's context of %lld tokens",
           ids.size(), (long long)limit);
  const int64_t new_tokens = std::min<int64_t>(n, limit - int64_t(ids.size()));
  if (new_tokens < n)
    std::fprintf(stderr, "razor generate: context limit %lld: generating at most %lld tokens\n", (long long)limit,
                 (long long)new_tokens);
  std::vector<int32_t> eos;
  for (int64_t e : pm.cfg.eos_token_ids) eos.push_back(int32_t(e));
  if (tok.eos_id() >= 0) eos.push_back(tok.eos_id());
  if (ap.on("--chat")) eos.push_back(tok.added_id("<|im_end|>"));

  Engine engine(pm, int64_t(ids.size()) + new_tokens);
  Sampler sampler(so, pm.cfg.vocab_size);
  if (!ap.on("--chat")) {
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::fflush(stdout);
  }
  const GenerateStats st = generate(engine, tok, ids, new_tokens, sampler, eos, [](const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  });
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr, "razor generate: prompt %lld tokens %.1f tok/s, generated %lld tokens %.1f tok/s%s (%d threads)\n",
               (long long)st.prompt_tokens, st.prefill_seconds > 0 ? st.prompt_tokens / st.prefill_seconds : 0.0,
               (long long)st.generated, st.decode_seconds > 0 ? st.generated / st.decode_seconds : 0.0,
               st.stopped_at_eos ? ", stopped at end of sequence" : "", num_threads());
  return 0;
}

}  // namespace razor
