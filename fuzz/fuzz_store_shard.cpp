// Fuzz target: the teacher store reader (distill/store.h). An input is a manifest.json
// text, one NUL byte, then the bytes of shard-00000.bin; both are written into a scratch
// directory and opened with StoreReader, then every sequence's fields are read. Each input
// is tried as given and with the shard's header and payload checksums recomputed (and the
// manifest's shards[].checksum set to match), so mutations reach the record layout checks.
#include <sys/stat.h>

#include "core/checksum.h"
#include "distill/store.h"
#include "fuzz/fuzz_common.h"
#include "io/json.h"
#include "tests/store_test_util.h"

using namespace razor;
using razor_fuzz::seed;

static StoreInfo make_info(HiddenDtype hd, LogitStorage ls, LogpDtype lp, int64_t layers, int64_t selected) {
  StoreInfo info = tiny_store_info();
  info.teacher_id = "fuzz";
  info.num_layers = layers;
  info.hidden_dtype = hd;
  info.logits = ls;
  info.logp_dtype = lp;
  info.selected_taps = selected;
  return info;
}

static void make_seeds(const std::string& dir) {
  struct Case {
    const char* name;
    HiddenDtype hd;
    LogitStorage ls;
    LogpDtype lp;
    int64_t layers, selected;
  };
  // The third: a selected-tap store (version 2) keeping 2 of 4 taps per sequence.
  const Case cases[] = {{"bf16_topk_f32", HiddenDtype::BF16, LogitStorage::TopK, LogpDtype::F32, 1, 0},
                        {"int8_full_f16", HiddenDtype::INT8, LogitStorage::Full, LogpDtype::F16, 1, 0},
                        {"int8_topk_f32_selected", HiddenDtype::INT8, LogitStorage::TopK, LogpDtype::F32, 3, 2}};
  for (const Case& c : cases) {
    StoreInfo info = make_info(c.hd, c.ls, c.lp, c.layers, c.selected);
    const std::string sdir = razor_fuzz::scratch(std::string("seed_") + c.name);
    std::system(("rm -rf '" + sdir + "'").c_str());
    {
      StoreWriter w(sdir, info);
      const int64_t T = info.seq_len, C = info.hidden_size, V = info.vocab_size;
      std::vector<float> hidden(size_t(T * C)), logits(size_t(T * V));
      for (int s = 0; s < 2; ++s) {
        std::vector<int32_t> ids;
        for (int64_t t = 0; t <= T; ++t) ids.push_back(int32_t((t * 5 + s) % V));
        std::vector<uint8_t> mask(size_t(T + 1), 1);
        mask[0] = 0;
        for (size_t i = 0; i < hidden.size(); ++i) hidden[i] = float(int(i % 7) - 3) * 0.25f + float(s);
        for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(int(i * 3 % 11) - 5) * 0.5f;
        // Taps l >= 2 rotate the features, so the layer cosines differ (the selection is not all ties).
        std::vector<std::vector<float>> rot(size_t(info.num_layers + 1), hidden);
        for (int64_t l = 2; l <= info.num_layers; ++l)
          for (size_t i = 0; i < hidden.size(); ++i) rot[size_t(l)][i] = hidden[(i + size_t(l)) % hidden.size()];
        std::vector<const float*> taps(size_t(info.num_layers + 1), hidden.data());
        for (int64_t l = 2; l <= info.num_layers; ++l) taps[size_t(l)] = rot[size_t(l)].data();
        w.add_sequence(ids.data(), mask.data(), taps, logits.data());
      }
      w.finish();
    }
    std::string bytes = razor_fuzz::slurp(store_manifest_path(sdir));
    bytes += '\0';
    bytes += razor_fuzz::slurp(sdir + "/" + store_shard_name(0));
    seed(dir, c.name, bytes);
    std::system(("rm -rf '" + sdir + "'").c_str());
  }
}
RAZOR_FUZZ_INIT(make_seeds)

static void try_open(const std::string& dir) {
  try {
    StoreReader r(dir, StoreVerify::Lazy);
    (void)r.stats();
    double sum = 0;
    for (int64_t i = 0; i < r.num_sequences(); ++i) {
      SequenceView v = r.sequence(i);
      r.prefetch(i, 1);
      std::vector<float> row(size_t(v.C));
      for (int64_t t = 0; t <= v.T; ++t) sum += v.ids[t] + v.mask[t];
      for (int64_t l = 0; l <= v.L; ++l) {  // every tap the record keeps (all L+1, or the selected ones)
        if (!v.has_tap(l)) continue;
        for (int64_t t = 0; t < v.T; ++t) {
          v.hidden_row(l, t, row.data());
          sum += row[0];
        }
      }
      for (int64_t j = 0; j < v.taps; ++j) v.hidden_slot_row(j, 0, row.data()), sum += row[0];
      for (int64_t t = 0; t < v.T; ++t) {
        for (int64_t j = 0; j < v.bins(); ++j) sum += v.logp_at(t, j);
        sum += v.entropy[t] + v.target_logp[t];
        if (v.tail_logp) sum += v.tail_logp[t];
        if (v.topk_ids)
          for (int64_t j = 0; j < v.K; ++j) sum += v.topk_ids[t * v.K + j];
      }
      sum += v.cos_sum[0] + double(v.cos_count[0]);
    }
    razor_fuzz::keep(sum);
  } catch (const Error&) {
  }
}

RAZOR_FUZZ_ONE_INPUT {
  static const std::string dir = [] {
    std::string d = razor_fuzz::scratch("store");
    ::mkdir(d.c_str(), 0755);
    return d;
  }();
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  if (!nul) return;
  std::string_view manifest = razor_fuzz::as_text(data, size_t(nul - data));
  std::string shard(reinterpret_cast<const char*>(nul + 1), size - size_t(nul + 1 - data));
  razor_fuzz::put_file(store_manifest_path(dir), manifest);
  razor_fuzz::put_file(dir + "/" + store_shard_name(0), shard);
  try_open(dir);

  // Checksums fixed up: payload hash at 80, header FNV-1a at 88, manifest to match.
  if (shard.size() < 128) return;
  uint64_t payload = hash64(shard.data() + 128, shard.size() - 128);
  std::memcpy(&shard[80], &payload, 8);
  uint64_t h = fnv1a64(shard.data(), 88);
  std::memcpy(&shard[88], &h, 8);
  std::string fixed(manifest);
  try {
    Json m = Json::parse(manifest);
    const Json* list = m.find("shards");
    if (list && list->is_array()) {
      Json shards = Json::array();
      for (const Json& s : list->items()) {
        Json c = s;
        if (c.is_object()) c.set("checksum", hex64(payload));
        shards.push_back(std::move(c));
      }
      m.set("shards", std::move(shards));
      fixed = m.dump();
    }
  } catch (const Error&) {
  }
  razor_fuzz::put_file(store_manifest_path(dir), fixed);
  razor_fuzz::put_file(dir + "/" + store_shard_name(0), shard);
  try_open(dir);
}
