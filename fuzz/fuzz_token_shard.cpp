// Fuzz target: TokenShard on an arbitrary file, then every token, document start, a
// batch and an evaluation window read. Each input is tried as given and with both
// checksums recomputed, so mutations of the counts and ids get past the checksums.
#include "core/checksum.h"
#include "fuzz/fuzz_common.h"
#include "train/shards.h"

using namespace razor;
using razor_fuzz::seed;

static void make_seeds(const std::string& dir) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < 40; ++i) tokens.push_back((i * 7) % 50);
  write_token_shard(dir + "/u16_docs.bin", tokens, {0, 11, 30}, 50);
  write_token_shard(dir + "/u16_nodocs.bin", {1, 2, 3}, {}, 4);
  std::vector<int32_t> big = {70000, 3, 65535, 99999, 5};
  write_token_shard(dir + "/u32.bin", big, {0, 2}, 100000);
}
RAZOR_FUZZ_INIT(make_seeds)

static void try_open(const std::string& path, bool verify) {
  try {
    TokenShard s(path, verify);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < s.n_docs(); ++i) sum += s.doc_start(i);
    const uint64_t n = std::min<uint64_t>(s.size(), 1 << 16);
    std::vector<int32_t> buf(n);
    s.read(0, n, buf.data());  // throws on an id >= vocab_size
    for (int32_t t : buf)
      if (t < 0 || uint32_t(t) >= s.vocab_size()) std::abort();
    if (s.size() >= 5) {
      BatchSampler bs(s, 2, 4, 7);
      std::vector<int32_t> b = bs.sample(3);
      if (eval_window_count(s, 4) > 0) eval_window(s, 4, eval_window_count(s, 4) - 1, b.data());
    }
    razor_fuzz::keep(sum);
  } catch (const Error&) {
  }
}

RAZOR_FUZZ_ONE_INPUT {
  static const std::string path = razor_fuzz::scratch("tokens.bin");
  razor_fuzz::put_file(path, data, size);
  try_open(path, true);
  if (size < 64) return;
  // Recompute the data checksum (when the counts fit the input) and the header checksum.
  std::string s(reinterpret_cast<const char*>(data), size);
  uint32_t tb;
  uint64_t nt, nd;
  std::memcpy(&tb, &s[16], 4);
  std::memcpy(&nt, &s[24], 8);
  std::memcpy(&nd, &s[32], 8);
  if ((tb == 2 || tb == 4) && nt <= size && nd <= size) {
    uint64_t tok_bytes = nt * tb, padded = (tok_bytes + 7) / 8 * 8;
    if (64 + padded + nd * 8 <= size) {
      uint64_t sum = fnv1a64(s.data() + 64, tok_bytes);
      sum = fnv1a64(s.data() + 64 + padded, nd * 8, sum);
      std::memcpy(&s[40], &sum, 8);
    }
  }
  uint64_t h = fnv1a64(s.data(), 48);
  std::memcpy(&s[48], &h, 8);
  razor_fuzz::put_file(path, s);
  try_open(path, true);
}
