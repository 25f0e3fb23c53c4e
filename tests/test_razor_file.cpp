// .razor container: round trip, and rejection of truncated / corrupted / foreign files.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "core/error.h"
#include "io/razor_file.h"

using namespace razor;

static std::string tmp_path(const char* name) {
  return std::string("/tmp/razor_test_") + std::to_string(getpid()) + "_" + name;
}

static void write_bytes(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

TEST_SUITE("io") {
  TEST_CASE("razor file: round trip and corruption") {
    std::string path = tmp_path("a.razor");
    RazorFileWriter w;
    Json cfg = Json::object();
    cfg.set("hidden_size", Json(64));
    w.set("config", cfg);
    std::vector<uint8_t> a(100);
    for (size_t i = 0; i < a.size(); ++i) a[i] = uint8_t(i * 7);
    std::vector<uint16_t> b = {1, 2, 3};
    w.add("a", "u8", {10, 10}, a.data(), a.size());
    w.add("b", "f16", {3}, b.data(), 6);
    w.write(path);

    RazorFile f = RazorFile::open(path);
    CHECK(f.header().at("config").at("hidden_size").as_int() == 64);
    REQUIRE(f.tensors().size() == 2);
    const RazorTensor& ta = f.get("a", "u8", 100);
    CHECK(std::memcmp(f.data(ta), a.data(), 100) == 0);
    CHECK(reinterpret_cast<uintptr_t>(f.data(ta)) % 64 == 0);
    const RazorTensor& tb = f.get("b", "f16", 6);
    CHECK(std::memcmp(f.data(tb), b.data(), 6) == 0);
    CHECK_THROWS_AS(f.get("c", "u8", 1), Error);
    CHECK_THROWS_AS(f.get("a", "f16", 100), Error);

    std::string bytes;
    {
      FILE* fp = std::fopen(path.c_str(), "rb");
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, fp)) > 0) bytes.append(buf, n);
      std::fclose(fp);
    }
    std::string bad = tmp_path("bad.razor");
    SUBCASE("truncated") {
      for (size_t cut : {size_t(0), size_t(10), size_t(63), size_t(64), size_t(100), bytes.size() - 1}) {
        write_bytes(bad, bytes.substr(0, cut));
        CHECK_THROWS_AS(RazorFile::open(bad), Error);
      }
    }
    SUBCASE("bad magic") {
      std::string x = bytes;
      x[0] = 'X';
      write_bytes(bad, x);
      CHECK_THROWS_WITH_AS(RazorFile::open(bad), (bad + ": not a .razor file (bad magic)").c_str(), Error);
    }
    SUBCASE("flipped data byte") {
      std::string x = bytes;
      x[x.size() - 1] ^= 1;
      write_bytes(bad, x);
      CHECK_THROWS_AS(RazorFile::open(bad), Error);
      CHECK_NOTHROW(RazorFile::open(bad, /*verify_data=*/false));
    }
    SUBCASE("flipped json byte") {
      std::string x = bytes;
      x[70] ^= 1;
      write_bytes(bad, x);
      CHECK_THROWS_AS(RazorFile::open(bad), Error);
    }
    SUBCASE("huge length in header") {
      std::string x = bytes;
      uint64_t huge = ~0ull;
      std::memcpy(&x[16], &huge, 8);
      write_bytes(bad, x);
      CHECK_THROWS_AS(RazorFile::open(bad), Error);
    }
    std::remove(bad.c_str());
    std::remove(path.c_str());
  }

  TEST_CASE("hash64 distinguishes lengths and bytes") {
    std::string s(100, 'a');
    uint64_t h = hash64(s.data(), s.size());
    CHECK(h == hash64(s.data(), s.size()));
    for (size_t n = 0; n < 70; ++n) CHECK(hash64(s.data(), n) != hash64(s.data(), n + 1));
    s[37] = 'b';
    CHECK(hash64(s.data(), s.size()) != h);
  }
}
