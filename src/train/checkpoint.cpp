#include "train/checkpoint.h"

#include <cstdio>
#include <cstring>

#include "core/checksum.h"
#include "core/error.h"
#include "io/file_util.h"
#include "io/mapped_file.h"

namespace razor {

namespace {

constexpr char kArrayMagic[8] = {'R', 'Z', 'F', '3', '2', 'A', 'R', 'R'};
constexpr uint32_t kArrayVersion = 1;
constexpr uint32_t kArrayHeader = 32;
constexpr int kStateVersion = 1;
const char* const kArrayFiles[3] = {"params.f32", "adam_m.f32", "adam_v.f32"};

uint64_t write_array(const std::string& path, const float* data, size_t n) {
  unsigned char h[kArrayHeader] = {};
  uint64_t count = n, sum = fnv1a64(data, n * sizeof(float));
  uint32_t version = kArrayVersion, hb = kArrayHeader;
  std::memcpy(h, kArrayMagic, 8);
  std::memcpy(h + 8, &version, 4);
  std::memcpy(h + 12, &hb, 4);
  std::memcpy(h + 16, &count, 8);
  std::memcpy(h + 24, &sum, 8);
  FileWriter w(path);
  w.write(h, sizeof h);
  w.write(data, n * sizeof(float));
  w.close();
  return sum;
}

std::vector<float> read_array(const std::string& path, uint64_t expect_count, uint64_t expect_sum) {
  const char* f = path.c_str();
  std::shared_ptr<MappedFile> map = MappedFile::open(path);
  const MappedFile& m = *map;
  RZ_CHECK(m.size() >= kArrayHeader, "%s: %zu bytes, shorter than the %u-byte header (truncated)", f, m.size(),
           kArrayHeader);
  RZ_CHECK(std::memcmp(m.data(), kArrayMagic, 8) == 0, "%s: bad magic (not a razor f32 array)", f);
  uint32_t version, hb;
  uint64_t count, sum;
  std::memcpy(&version, m.data() + 8, 4);
  std::memcpy(&hb, m.data() + 12, 4);
  std::memcpy(&count, m.data() + 16, 8);
  std::memcpy(&sum, m.data() + 24, 8);
  RZ_CHECK(version == kArrayVersion, "%s: version %u not supported (expected %u)", f, version, kArrayVersion);
  RZ_CHECK(hb == kArrayHeader, "%s: header_bytes %u, expected %u", f, hb, kArrayHeader);
  RZ_CHECK(count == expect_count, "%s: count %llu, but state.json says n_params %llu", f, (unsigned long long)count,
           (unsigned long long)expect_count);
  RZ_CHECK(count <= (m.size() - kArrayHeader) / 4 && m.size() == kArrayHeader + count * 4,
           "%s: file size %zu does not match count %llu (truncated or padded)", f, m.size(), (unsigned long long)count);
  RZ_CHECK(sum == expect_sum, "%s: checksum in the file header differs from state.json (mixed checkpoints?)", f);
  RZ_CHECK(fnv1a64(m.data() + kArrayHeader, count * 4) == sum, "%s: checksum mismatch (data corrupted)", f);
  std::vector<float> out(count);
  if (count) std::memcpy(out.data(), m.data() + kArrayHeader, count * 4);
  return out;
}

Checkpoint load_dir(const std::string& dir) {
  Checkpoint ck;
  ck.loaded_from = dir;
  const std::string state_path = dir + "/state.json";
  const std::string what = state_path;
  Json st = Json::parse(read_file(state_path), state_path);
  RZ_CHECK(st.is_object(), "%s: not a JSON object", what.c_str());
  RZ_CHECK(st.get_string("format", "") == "razor-checkpoint", "%s: format: expected \"razor-checkpoint\"",
           what.c_str());
  int64_t version = st.at("version", what.c_str()).as_int("state.json: version");
  RZ_CHECK(version == kStateVersion, "%s: version %lld not supported (expected %d)", what.c_str(), (long long)version,
           kStateVersion);
  ck.meta.step = st.at("step", what.c_str()).as_int("state.json: step");
  RZ_CHECK(ck.meta.step >= 0, "%s: step: negative", what.c_str());
  uint64_t v;
  RZ_CHECK(parse_hex64(st.at("data_cursor", what.c_str()).as_string("state.json: data_cursor"), &v),
           "%s: data_cursor: expected 16 hex digits", what.c_str());
  ck.meta.data_cursor = v;
  const Json& rng = st.at("rng", what.c_str());
  RZ_CHECK(rng.is_array() && rng.size() == 4, "%s: rng: expected an array of 4 hex strings", what.c_str());
  for (size_t i = 0; i < 4; ++i)
    RZ_CHECK(parse_hex64(rng[i].as_string("state.json: rng"), &ck.meta.rng[i]), "%s: rng[%zu]: expected 16 hex digits",
             what.c_str(), i);
  int64_t n = st.at("n_params", what.c_str()).as_int("state.json: n_params");
  RZ_CHECK(n >= 0, "%s: n_params: negative", what.c_str());
  const Json& sums = st.at("checksums", what.c_str());
  std::vector<float>* dst[3] = {&ck.params, &ck.adam_m, &ck.adam_v};
  for (int i = 0; i < 3; ++i) {
    uint64_t sum;
    RZ_CHECK(parse_hex64(sums.at(kArrayFiles[i], what.c_str()).as_string("state.json: checksums"), &sum),
             "%s: checksums.%s: expected 16 hex digits", what.c_str(), kArrayFiles[i]);
    *dst[i] = read_array(dir + "/" + kArrayFiles[i], uint64_t(n), sum);
  }
  const std::string cfg_path = dir + "/config.json";
  ck.meta.config = Json::parse(read_file(cfg_path), cfg_path);
  return ck;
}

}  // namespace

namespace {

// Writes the complete new checkpoint into `tmp` (nothing outside it is touched).
void write_checkpoint_files(const std::string& dir, const std::string& tmp, const CheckpointMeta& meta,
                            const float* params, const float* adam_m, const float* adam_v, size_t n,
                            const CheckpointSaveOptions& opt) {
  remove_tree(tmp);  // a crashed earlier save
  make_dir(tmp);
  int files = 0;
  auto written = [&]() {
    if (++files == opt.fail_after_files) fail("%s: simulated failure after %d files", dir.c_str(), files);
  };

  const float* arrays[3] = {params, adam_m, adam_v};
  Json sums = Json::object();
  for (int i = 0; i < 3; ++i) {
    sums.set(kArrayFiles[i], hex64(write_array(tmp + "/" + kArrayFiles[i], arrays[i], n)));
    written();
  }
  std::string cfg = meta.config.dump(2) + "\n";
  write_file_atomic(tmp + "/config.json", cfg.data(), cfg.size());
  written();
  Json st = Json::object();
  st.set("format", "razor-checkpoint");
  st.set("version", kStateVersion);
  st.set("step", meta.step);
  st.set("data_cursor", hex64(meta.data_cursor));
  Json rng = Json::array();
  for (uint64_t s : meta.rng) rng.push_back(hex64(s));
  st.set("rng", std::move(rng));
  st.set("n_params", uint64_t(n));
  st.set("checksums", std::move(sums));
  std::string state = st.dump(2) + "\n";
  // state.json last: a directory without it is never a checkpoint.
  write_file_atomic(tmp + "/state.json", state.data(), state.size());
  written();
  fsync_dir(tmp);
}

}  // namespace

void save_checkpoint(const std::string& dir, const CheckpointMeta& meta, const float* params, const float* adam_m,
                     const float* adam_v, size_t n, const CheckpointSaveOptions& opt) {
  const std::string tmp = dir + ".tmp", old = dir + ".old";
  try {
    write_checkpoint_files(dir, tmp, meta, params, adam_m, adam_v, n, opt);
  } catch (const Error& e) {
    // A full disk, a quota, a file-size limit: the new checkpoint is incomplete in <dir>.tmp
    // (never read; removed by the next save), the previous one in <dir> was not touched.
    if (checkpoint_exists(dir))
      fail("%s (checkpoint of step %lld not saved; the previous checkpoint in %s is intact)", e.what(),
           (long long)meta.step, dir.c_str());
    fail("%s (checkpoint of step %lld not saved)", e.what(), (long long)meta.step);
  }

  if (is_directory(dir)) {
    remove_tree(old);  // dir is complete, so the older copy is no longer needed
    if (std::rename(dir.c_str(), old.c_str()) != 0) fail("%s: cannot move the previous checkpoint aside", dir.c_str());
  }
  if (std::rename(tmp.c_str(), dir.c_str()) != 0) fail("%s: cannot rename the new checkpoint into place", dir.c_str());
  fsync_dir(parent_dir(dir));
  remove_tree(old);
}

bool checkpoint_exists(const std::string& dir) {
  return path_exists(dir + "/state.json") || path_exists(dir + ".old/state.json");
}

Checkpoint load_checkpoint(const std::string& dir) {
  if (path_exists(dir + "/state.json")) return load_dir(dir);
  if (path_exists(dir + ".old/state.json")) return load_dir(dir + ".old");
  fail("%s: no checkpoint here (neither %s nor %s.old exists)", dir.c_str(), dir.c_str(), dir.c_str());
}

}  // namespace razor
