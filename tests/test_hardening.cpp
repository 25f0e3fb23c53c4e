// Hardening: regression tests for the defects the fuzzers (fuzz/) and the sanitizer build
// found in the loaders, one case per defect; a full disk while a checkpoint or a teacher-store
// shard is written (RLIMIT_FSIZE); and the scripted tests tools/test_cli.sh (bad command
// lines) and tools/test_crash.sh (SIGKILL at random moments, then --resume).
// Each loader case is a hostile input that used to crash, overflow or allocate without bound
// and must now give a razor::Error naming the field.
// Deliberately not here: the loaders' ordinary error cases (their own module's tests).
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/checksum.h"
#include "core/error.h"
#include "distill/store.h"
#include "io/hf_config.h"
#include "io/json.h"
#include "io/razor_file.h"
#include "io/file_util.h"
#include "io/tokenizer.h"
#include "train/checkpoint.h"
#include "train/shards.h"
#include "tests/reference_util.h"
#include "store_test_util.h"
#include "test_util.h"

using namespace razor;
namespace fs = std::filesystem;

namespace {

std::string scratch_dir(const std::string& name) {
  std::string d = (fs::temp_directory_path() / ("razor_hardening_" + std::to_string(::getpid()) + "_" + name)).string();
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A full disk, simulated: while it lives, files this process writes cannot grow past
// `bytes` (RLIMIT_FSIZE, soft limit only) and SIGXFSZ is ignored, so write() fails with
// EFBIG the way it fails with ENOSPC on a full disk. The destructor restores both.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_) == 0);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit r = saved_;
    r.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &r) == 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit saved_{};
  void (*old_handler_)(int) = SIG_DFL;
};

// Runs `bash tools/<script> <razor binary>` from the repository root; the test binary does
// not link main, so it runs the one `make` put next to it (./razor, or build-san/razor under
// SAN=1). Says SKIPPED when the binary or the script is missing.
void run_script(const std::string& script, const std::string& summary_prefix) {
#if defined(__SANITIZE_ADDRESS__)
  const char* exe = "build-san/razor";
#else
  const char* exe = "razor";
#endif
  const std::string path = "tools/" + script;
  if (!fs::exists(exe) || !fs::exists(path)) {
    RAZOR_REFERENCE_MISSING(exe << " or " << path << " not found (run the tests from the repository root with `make test`)");
    return;
  }
  const std::string log =
      (fs::temp_directory_path() / ("razor_" + script + "_" + std::to_string(::getpid()) + ".log")).string();
  const int rc = std::system(("bash " + path + " " + std::string(exe) + " > " + log + " 2>&1").c_str());
  const std::string out = read_file(log);
  fs::remove(log);
  CHECK_MESSAGE(rc == 0, out);  // the whole log only when something failed
  const size_t last = out.rfind(summary_prefix);
  MESSAGE(out.substr(last == std::string::npos ? 0 : last));
}

}  // namespace

TEST_SUITE("hardening") {
  TEST_CASE("store manifest: sizes whose product overflows int64 are refused (was signed overflow)") {
    // Each field passes StoreInfo::validate (T, C, V < 2^31, L < 4096), but (L+1)*T*C*2
    // is about 2^74: RecordLayout::make overflowed int64 (UB) and used a wrapped size.
    StoreInfo info;
    info.seq_len = (int64_t(1) << 31) - 1;
    info.num_layers = 4095;
    info.hidden_size = (int64_t(1) << 31) - 1;
    info.vocab_size = 9;
    info.top_k = 3;
    CHECK(contains(error_of([&] { RecordLayout::make(info); }), "exceed 2^40 bytes"));
    info.num_layers = 1;
    info.hidden_size = 4;
    info.logits = LogitStorage::Full;
    info.vocab_size = (int64_t(1) << 31) - 1;  // T * V * 4: 2^64
    CHECK(contains(error_of([&] { RecordLayout::make(info); }), "exceed 2^40 bytes"));
    // The same through a manifest on disk.
    const std::string dir = scratch_dir("store");
    write_file_atomic(dir + "/manifest.json",
                      "{\"format\":\"razor-teacher-store\",\"version\":1,\"teacher_hash\":\"0000000000001234\","
                      "\"tokenizer_hash\":\"0000000000005678\",\"seq_len\":2147483647,\"num_layers\":4095,"
                      "\"hidden_size\":2147483647,\"vocab_size\":9,\"hidden_dtype\":\"bf16\",\"logits\":\"topk\","
                      "\"top_k\":3,\"logp_dtype\":\"f32\",\"shard_sequences\":1,\"num_sequences\":0,\"shards\":[]}");
    CHECK(contains(error_of([&] { StoreReader r(dir); }), "exceed 2^40 bytes"));
    fs::remove_all(dir);
  }

  TEST_CASE("store shard: token ids and top-K ids outside the vocabulary are refused (losses index with them)") {
    // A shard whose checksums are all valid but whose ids are hostile: the losses read
    // z[topk_id] and use ids as targets, so verification must range-check them.
    const StoreInfo info = tiny_store_info();
    const RecordLayout layout = RecordLayout::make(info);
    for (const char* field : {"ids", "topk_ids"}) {
      CAPTURE(field);
      const std::string dir = scratch_dir("store_ids");
      {
        StoreWriter w(dir, info);
        std::vector<int32_t> ids = {1, 2, 3, 4, 5};
        std::vector<float> hidden(16, 0.5f), logits(36, 0.f);
        for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(i % 9);
        std::vector<const float*> taps(2, hidden.data());
        w.add_sequence(ids.data(), nullptr, taps, logits.data());
        w.finish();
      }
      const std::string shard = dir + "/" + store_shard_name(0);
      std::string bytes = read_file(shard);
      const int64_t off = 128 + (std::string(field) == "ids" ? layout.ids + 4 * 2 : layout.topk_ids + 4 * 5);
      const int32_t bad = 9;  // == V
      std::memcpy(&bytes[size_t(off)], &bad, 4);
      const uint64_t payload = hash64(bytes.data() + 128, bytes.size() - 128);
      std::memcpy(&bytes[80], &payload, 8);
      const uint64_t head = fnv1a64(bytes.data(), 88);
      std::memcpy(&bytes[88], &head, 8);
      write_file_atomic(shard, bytes);
      Json m = Json::parse(read_file(store_manifest_path(dir)));
      Json shards = Json::array();
      for (const Json& e : m.at("shards").items()) {
        Json c = e;
        c.set("checksum", hex64(payload));
        shards.push_back(c);
      }
      m.set("shards", shards);
      write_file_atomic(store_manifest_path(dir), m.dump());
      const std::string e = error_of([&] { StoreReader r(dir); });
      CHECK(contains(e, std::string(field) + "["));
      CHECK(contains(e, "outside the vocabulary"));
      StoreReader lazy(dir, StoreVerify::Lazy);
      CHECK(contains(error_of([&] { lazy.sequence(0); }), "outside the vocabulary"));
      fs::remove_all(dir);
    }
  }

  TEST_CASE("token shard: vocab_size >= 2^31 is refused (ids would turn negative as int32)") {
    // A well-formed shard (valid checksums) with one uint32 token 0x80000001 < vocab_size.
    std::string f(64, '\0');
    std::memcpy(&f[0], "RZTOKENS", 8);
    auto put32 = [&](size_t at, uint32_t v) { std::memcpy(&f[at], &v, 4); };
    auto put64 = [&](size_t at, uint64_t v) { std::memcpy(&f[at], &v, 8); };
    put32(8, 1);
    put32(12, 64);
    put32(16, 4);
    put32(20, 0x90000000u);
    put64(24, 1);
    put64(32, 0);
    const uint32_t token = 0x80000001u;
    std::string data(8, '\0');
    std::memcpy(&data[0], &token, 4);
    put64(40, fnv1a64(data.data(), 4));
    put64(48, fnv1a64(f.data(), 48));
    const std::string dir = scratch_dir("shard");
    write_file_atomic(dir + "/t.bin", f + data);
    CHECK(contains(error_of([&] { TokenShard s(dir + "/t.bin"); }), "vocab_size"));
    fs::remove_all(dir);
  }

  TEST_CASE("tokenizer.json: a huge token id in a small file is refused (was a multi-GB allocation)") {
    auto make = [](int64_t extra_id, bool as_added) {
      Json vocab = Json::object();
      for (int b = 0; b < 256; ++b) vocab.set_unchecked(byte_level_char(uint8_t(b)), int64_t(b));
      if (!as_added) vocab.set_unchecked("zz", extra_id);
      Json model = Json::object();
      model.set("type", "BPE");
      model.set("vocab", vocab);
      model.set("merges", Json::array());
      Json root = Json::object();
      root.set("model", model);
      root.set("pre_tokenizer", Json::parse("{\"type\":\"ByteLevel\",\"add_prefix_space\":false}"));
      if (as_added) {
        Json tok = Json::object();
        tok.set("id", extra_id);
        tok.set("content", "<big>");
        Json list = Json::array();
        list.push_back(tok);
        root.set("added_tokens", list);
      }
      return error_of([&] { Tokenizer::from_json(root.dump(), "big.json"); }, "(no error)");
    };
    CHECK(make(300, false) == "(no error)");
    CHECK(make(300, true) == "(no error)");
    CHECK(contains(make(1000000000, false), "unused ids"));
    CHECK(contains(make(1000000000, true), "unused ids"));
  }

  TEST_CASE("hash64 of an empty span given as (nullptr, 0); a .razor file without tensors (was UB: memcpy from null)") {
    const char empty[1] = {0};
    CHECK(hash64(nullptr, 0) == hash64(empty, 0));
    Hash64 h;
    h.update(nullptr, 0);
    CHECK(h.digest() == hash64(empty, 0));
    const std::string dir = scratch_dir("razor_file");
    RazorFileWriter w;
    w.write(dir + "/empty.razor");  // its data region is an empty vector
    RazorFile f = RazorFile::open(dir + "/empty.razor");
    CHECK(f.tensors().empty());
    fs::remove_all(dir);
  }

  TEST_CASE("config.json: implausibly large sizes are refused before any shape is formed") {
    // Json::find returns the first of duplicate keys, so fields are replaced with set().
    auto cfg = [](const char* key, int64_t value) {
      Json j = Json::parse("{\"model_type\":\"llama\",\"vocab_size\":512,\"hidden_size\":64,"
                           "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128}");
      if (key) j.set(key, value);
      return error_of([&] { ModelConfig::from_json(j, "config.json").validate("config.json"); }, "(no error)");
    };
    CHECK(cfg(nullptr, 0) == "(no error)");
    // vocab_size * hidden_size used to overflow int64 in the embedding's shape.
    std::string e = cfg("vocab_size", int64_t(1) << 62);
    CHECK(contains(e, "vocab_size"));
    CHECK(contains(e, "implausibly large"));
    CHECK(contains(cfg("intermediate_size", INT64_MAX), "intermediate_size"));
    CHECK(contains(cfg("max_position_embeddings", INT64_MAX), "max_position_embeddings"));
    CHECK(contains(cfg("head_dim", int64_t(1) << 62), "head_dim"));
    CHECK(contains(cfg("num_hidden_layers", 100000), "num_hidden_layers"));
  }

  TEST_CASE("full disk while saving a checkpoint: the previous one stays loadable, the error names the file") {
    const std::string root = scratch_dir("ckpt_full");
    const std::string ck = root + "/checkpoint";
    const size_t n = 4096;  // 16 KiB + 32 bytes per array file
    std::vector<float> p1(n, 1.0f), m1(n, 0.5f), v1(n, 0.25f), p2(n, 2.0f);
    CheckpointMeta meta;
    meta.step = 7;
    meta.data_cursor = 7;
    meta.config = Json::object();
    save_checkpoint(ck, meta, p1.data(), m1.data(), v1.data(), n);
    meta.step = 8;
    std::string e;
    {
      FileSizeLimit full(8192);  // params.f32 of the next save does not fit
      e = error_of([&] { save_checkpoint(ck, meta, p2.data(), m1.data(), v1.data(), n); });
    }
    CHECK(contains(e, ck + ".tmp/params.f32"));
    CHECK(contains(e, "write failed"));
    CHECK(contains(e, "previous checkpoint"));
    Checkpoint got = load_checkpoint(ck);
    CHECK(got.loaded_from == ck);
    CHECK(got.meta.step == 7);
    CHECK(got.params == p1);
    CHECK(got.adam_m == m1);
    CHECK(got.adam_v == v1);

    // A large config.json (the last file but one) failing: the arrays fit, the save still fails
    // as a whole and the old checkpoint is the one loaded.
    meta.config.set("note", std::string(20000, 'x'));
    {
      FileSizeLimit full(16384 + 64);
      e = error_of([&] { save_checkpoint(ck, meta, p2.data(), m1.data(), v1.data(), n); });
    }
    CHECK(contains(e, "config.json"));
    CHECK(contains(e, "write failed"));
    CHECK(load_checkpoint(ck).meta.step == 7);
    CHECK(load_checkpoint(ck).params == p1);

    // Space again: the next save succeeds and clears the debris.
    save_checkpoint(ck, meta, p2.data(), m1.data(), v1.data(), n);
    CHECK(load_checkpoint(ck).meta.step == 8);
    CHECK(load_checkpoint(ck).params == p2);
    CHECK_FALSE(path_exists(ck + ".tmp"));
    CHECK_FALSE(path_exists(ck + ".old"));
    fs::remove_all(root);
  }

  TEST_CASE("full disk while writing a teacher-store shard: complete shards stay, the dump resumes") {
    const StoreInfo info = tiny_store_info();
    const std::string dir = scratch_dir("store_full");
    std::vector<float> hidden(16, 0.5f), logits(36, 0.f);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(i % 9);
    std::vector<const float*> taps(2, hidden.data());
    auto ids_of = [](int seq) {
      std::vector<int32_t> ids(5);
      for (int t = 0; t < 5; ++t) ids[size_t(t)] = (seq + t) % 9;
      return ids;
    };
    const std::string shard0 = dir + "/" + store_shard_name(0), shard1 = dir + "/" + store_shard_name(1);
    std::string e, before;
    {
      StoreWriter w(dir, info);
      for (int s = 0; s < 2; ++s) w.add_sequence(ids_of(s).data(), nullptr, taps, logits.data());
      REQUIRE(path_exists(shard0));  // shard 0 is complete and renamed into place
      before = read_file(shard0);
      FileSizeLimit full(before.size() / 2);  // not even one record of shard 1 fits
      e = error_of([&] {
        for (int s = 2; s < 4; ++s) w.add_sequence(ids_of(s).data(), nullptr, taps, logits.data());
        w.finish();
      });
    }
    CHECK(contains(e, store_shard_name(1)));
    CHECK(contains(e, "write failed"));
    CHECK(read_file(shard0) == before);
    CHECK_FALSE(path_exists(shard1));
    CHECK_FALSE(path_exists(store_manifest_path(dir)));
    {
      StoreWriter w(dir, info);  // resumes after the complete shard, drops the partial one
      CHECK(w.next_sequence() == 2);
      for (int s = 2; s < 4; ++s) w.add_sequence(ids_of(s).data(), nullptr, taps, logits.data());
      w.finish();
    }
    CHECK_FALSE(path_exists(shard1 + ".tmp"));
    StoreReader r(dir);
    REQUIRE(r.num_sequences() == 4);
    for (int s = 0; s < 4; ++s) {
      CAPTURE(s);
      std::vector<int32_t> want = ids_of(s);
      CHECK(std::vector<int32_t>(r.sequence(s).ids, r.sequence(s).ids + 5) == want);
    }
    fs::remove_all(dir);
  }

  TEST_CASE("command line: bad options exit with `razor: error:`, never a crash (tools/test_cli.sh)") {
    run_script("test_cli.sh", "test_cli:");
  }

  TEST_CASE("crash safety: SIGKILL at random moments, then --resume, gives the uninterrupted run's bits (tools/test_crash.sh)") {
    run_script("test_crash.sh", "test_crash:");
  }
}
