// Fuzz target: SafeTensorsReader on an arbitrary file, then every tensor read as f32.
#include "fuzz/fuzz_common.h"
#include "io/safetensors.h"

using namespace razor;
using razor_fuzz::seed;

static void make_seeds(const std::string& dir) {
  std::vector<float> a = {1.f, -2.f, 3.5f, 0.f, 1e-3f, 65504.f};
  std::vector<float> b = {0.25f, 0.5f};
  {
    SafeTensorsWriter w;
    w.add_raw("model.embed_tokens.weight", a.data(), {2, 3});
    w.add_raw("model.norm.weight", b.data(), {2}, StDType::BF16);
    w.set_metadata("razor", "seed");
    w.write(dir + "/two_tensors.safetensors");
  }
  {
    SafeTensorsWriter w;
    w.add_raw("scalar", b.data(), {}, StDType::F32);
    w.add_raw("empty", b.data(), {0, 4}, StDType::BF16);
    w.write(dir + "/scalar_empty.safetensors");
  }
  // A hand-written header with F16/F64/I32 entries and a hole between tensors.
  std::string hdr =
      "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
      "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]},"
      "\"i\":{\"dtype\":\"I32\",\"shape\":[1,1],\"data_offsets\":[16,20]},\"__metadata__\":{\"a\":\"b\"}}";
  std::string f(8, '\0');
  for (int i = 0; i < 8; ++i) f[size_t(i)] = char((hdr.size() >> (8 * i)) & 0xff);
  f += hdr;
  f += std::string("\x00\x3c\x00\xc0\x00\x00\x00\x00", 8);
  f += std::string("\x00\x00\x00\x00\x00\x00\xf0\x3f", 8);
  f += std::string("\x07\x00\x00\x00", 4);
  seed(dir, "mixed.safetensors", f);
}
RAZOR_FUZZ_INIT(make_seeds)

RAZOR_FUZZ_ONE_INPUT {
  static const std::string path = razor_fuzz::scratch("st.safetensors");
  razor_fuzz::put_file(path, data, size);
  SafeTensorsReader r(path);
  for (const StTensorInfo& t : r.tensors()) {
    try {
      Tensor x = r.read(t.name);
      razor_fuzz::keep(x.numel() ? x.data()[x.numel() - 1] : 0.f);
    } catch (const Error&) {
    }
  }
}
