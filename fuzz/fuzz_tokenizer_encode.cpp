// Fuzz target: encode / decode of arbitrary bytes with a small tokenizer trained at start-up
// (train_bpe, deterministic). Byte 0 picks the mode:
//   even: encode the rest as text (any bytes, valid UTF-8 or not); when it is valid UTF-8,
//         decode(encode(x)) must give x back after NFC (the trainer's tokenizer normalizes);
//         also with a tiny encode chunk, which must give the same ids;
//   odd:  the rest as little-endian int32 ids to decode (out of range -> razor::Error).
#include <memory>

#include "fuzz/fuzz_common.h"
#include "io/tokenizer.h"
#include "io/unicode.h"

using namespace razor;
using razor_fuzz::seed;

static const Tokenizer& tokenizer() {
  static std::unique_ptr<Tokenizer> tok = [] {
    BpeTrainOptions opt;
    opt.vocab_size = 400;
    std::string corpus =
        "The quick brown fox jumps over the lazy dog. 12 + 30 = 42. Ünïcödé façade naïve café "
        "日本語のテキスト 한국어 Привет мир. don't can't won't I'm you're we've they'll "
        "<|im_start|>user hello<|im_end|> <|endoftext|> tabs\tand\nnewlines\r\n  spaces   ";
    std::string json = train_bpe({corpus, corpus + corpus}, opt);
    return std::make_unique<Tokenizer>(Tokenizer::from_json(json, "fuzz_trained.json"));
  }();
  return *tok;
}

static void make_seeds(const std::string& dir) {
  seed(dir, "text_ascii", std::string("\x00", 1) + "Hello world, the quick brown fox <|im_end|> 123");
  seed(dir, "text_unicode", std::string("\x02", 1) + "cafe\xcc\x81 \xe6\x97\xa5\xe6\x9c\xac  \xf0\x9f\x98\x80\n\n x");
  seed(dir, "text_invalid", std::string("\x04", 1) + "ab\xff\xfe\xc3(\xe2\x82 \xed\xa0\x80 z");
  const Tokenizer& tok = tokenizer();
  std::vector<int32_t> ids = tok.encode("decode me <|endoftext|> please");
  std::string bytes("\x01", 1);
  bytes.append(reinterpret_cast<const char*>(ids.data()), ids.size() * 4);
  seed(dir, "ids", bytes);
}
RAZOR_FUZZ_INIT(make_seeds)

RAZOR_FUZZ_ONE_INPUT {
  if (size == 0) return;
  const Tokenizer& tok = tokenizer();
  std::string_view rest = razor_fuzz::as_text(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    std::vector<int32_t> ids = tok.encode(rest);
    for (int32_t id : ids)
      if (id < 0 || id >= tok.vocab_size()) std::abort();
    std::string back = tok.decode(ids);
    if (utf8_valid(rest)) {
      if (tok.decode(tok.encode(back)) != back) {
        std::fprintf(stderr, "decode(encode(x)) is not a fixed point\n");
        std::abort();
      }
    }
    // Chunked encoding (cuts where pieces cannot change) must give the same ids.
    Tokenizer& mut = const_cast<Tokenizer&>(tok);
    mut.set_encode_chunk(3);
    std::vector<int32_t> chunked = tok.encode(rest);
    mut.set_encode_chunk(size_t(1) << 16);
    if (chunked != ids) {
      std::fprintf(stderr, "chunked encode differs\n");
      std::abort();
    }
  } else {
    std::vector<int32_t> ids(rest.size() / 4);
    if (!ids.empty()) std::memcpy(ids.data(), rest.data(), ids.size() * 4);
    (void)tok.decode(ids, (data[0] & 2) != 0);
  }
}
