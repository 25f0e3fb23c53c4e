// Fuzz target: RazorFile::open on an arbitrary file, then every tensor's bytes touched.
// Each input is tried twice: as given, and with its three hashes recomputed (when the
// header's lengths lie inside the input), so mutations get past the checksums and reach
// the JSON header and the tensor table.
#include "core/checksum.h"
#include "fuzz/fuzz_common.h"
#include "io/razor_file.h"

using namespace razor;
using razor_fuzz::seed;

static void make_seeds(const std::string& dir) {
  {
    RazorFileWriter w;
    Json cfg = Json::object();
    cfg.set("hidden_size", int64_t(8));
    w.set("config", cfg);
    std::vector<uint8_t> a(40, 7), b(3, 1);
    Json extra = Json::object();
    extra.set("bits", int64_t(2));
    w.add("layers.0.wq", "q2_k", {4, 10}, a.data(), a.size(), extra);
    w.add("norm", "u8", {3}, b.data(), b.size());
    w.write(dir + "/two_tensors.razor");
  }
  {
    RazorFileWriter w;
    w.write(dir + "/empty.razor");
  }
}
RAZOR_FUZZ_INIT(make_seeds)

static uint64_t get64(const std::string& s, size_t at) {
  uint64_t v;
  std::memcpy(&v, s.data() + at, 8);
  return v;
}
static void put64(std::string& s, size_t at, uint64_t v) { std::memcpy(&s[at], &v, 8); }

static void try_open(const std::string& path) {
  try {
    RazorFile f = RazorFile::open(path, true);
    uint64_t sum = 0;
    for (const RazorTensor& t : f.tensors()) {
      const uint8_t* p = f.data(t);
      for (uint64_t i = 0; i < t.nbytes; ++i) sum += p[i];
    }
    razor_fuzz::keep(sum);
  } catch (const Error&) {
  }
}

RAZOR_FUZZ_ONE_INPUT {
  static const std::string path = razor_fuzz::scratch("f.razor");
  razor_fuzz::put_file(path, data, size);
  try_open(path);
  if (size < 64) return;
  std::string s(reinterpret_cast<const char*>(data), size);
  uint64_t json_len = get64(s, 16), data_offset = get64(s, 24), data_len = get64(s, 32);
  if (json_len <= size - 64) put64(s, 40, hash64(s.data() + 64, json_len));
  if (data_offset <= size && data_len <= size - data_offset) put64(s, 48, hash64(s.data() + data_offset, data_len));
  put64(s, 56, hash64(s.data(), 56));
  razor_fuzz::put_file(path, s);
  try_open(path);
}
