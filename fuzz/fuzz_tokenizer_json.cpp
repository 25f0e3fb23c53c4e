// Fuzz target: Tokenizer::from_json on arbitrary text; an accepted tokenizer must encode
// and decode a fixed text without error.
#include "fuzz/fuzz_common.h"
#include "io/json.h"
#include "io/tokenizer.h"

using namespace razor;
using razor_fuzz::seed;

static void make_seeds(const std::string& dir) {
  BpeTrainOptions opt;
  opt.vocab_size = 300;
  const std::string trained = train_bpe({"hello hello world world hello <|endoftext|> the the cat sat"}, opt);
  seed(dir, "trained.json", trained);
  // Variants: GPT-2 pre-tokenizer without Split, no normalizer, ignore_merges, an added
  // token with lstrip/rstrip (as tests/test_tokenizer.cpp builds them).
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab.set_unchecked(byte_level_char(uint8_t(b)), int64_t(b));
  vocab.set_unchecked("ab", int64_t(256));
  vocab.set_unchecked("abc", int64_t(257));
  Json model = Json::object();
  model.set("type", "BPE");
  model.set("ignore_merges", true);
  model.set("vocab", vocab);
  Json merges = Json::array();
  merges.push_back("a b");
  model.set("merges", merges);
  Json root = Json::object();
  root.set("model", std::move(model));
  root.set("pre_tokenizer", Json::parse("{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true}"));
  root.set("added_tokens", Json::parse("[{\"id\":258,\"content\":\"<sep>\",\"special\":true,\"lstrip\":true,"
                                       "\"rstrip\":true}]"));
  root.set("decoder", Json::parse("{\"type\":\"ByteLevel\"}"));
  seed(dir, "gpt2_style.json", root.dump());
}
RAZOR_FUZZ_INIT(make_seeds)

RAZOR_FUZZ_ONE_INPUT {
  Tokenizer tok = Tokenizer::from_json(razor_fuzz::as_text(data, size), "fuzz_tokenizer.json");
  const std::string text = "hello <sep> world\xc3\xa9 <|endoftext|> abc  123";
  std::vector<int32_t> ids = tok.encode(text);
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) {
      std::fprintf(stderr, "encode returned id %d outside [0, %d)\n", id, tok.vocab_size());
      std::abort();
    }
  (void)tok.decode(ids);
  (void)tok.decode(ids, true);
  (void)tok.bos_id();
  (void)tok.eos_id();
}
