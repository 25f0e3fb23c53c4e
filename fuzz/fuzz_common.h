// Shared plumbing of the libFuzzer targets fuzz/fuzz_*.cpp (one loader each).
// A target defines
//   static void make_seeds(const std::string& dir);   writes its seed inputs (made by razor)
//   RAZOR_FUZZ_INIT(make_seeds)
//   RAZOR_FUZZ_ONE_INPUT { ...use data, size... }     body runs under razor_fuzz::run
// The contract checked: any input ends in success or razor::Error. Any other exception
// escapes and libFuzzer reports it (like ASan/UBSan findings) as a crash.
// `build-fuzz/fuzz_x -make_seeds=DIR` writes the seeds and exits (tools/make_fuzz_seeds.sh).
// Deliberately not here: running or scheduling the fuzzers (tools/run_fuzz.sh).
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/error.h"

namespace razor_fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// A per-process scratch path under /tmp (parallel fuzz jobs do not collide); removed when
// the process exits normally (libFuzzer exits through exit() at -max_total_time).
inline std::vector<std::string>& scratch_paths() {
  static std::vector<std::string> paths;
  return paths;
}
inline std::string scratch(const std::string& name) {
  if (scratch_paths().empty())
    std::atexit([] {
      std::error_code ec;
      for (const std::string& p : scratch_paths()) std::filesystem::remove_all(p, ec);
    });
  std::string p = "/tmp/razor_fuzz_" + std::to_string(::getpid()) + "_" + name;
  scratch_paths().push_back(p);
  return p;
}

// Keeps a value computed from everything a loader returned, so the reads that produced it are
// not optimised away.
template <class T>
inline void keep(T v) {
  volatile T sink = v;
  (void)sink;
}

// Writes bytes to path (plain write: the loaders, not the writer, are under test).
inline void put_file(const std::string& path, const void* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}
inline void put_file(const std::string& path, std::string_view s) { put_file(path, s.data(), s.size()); }

inline void seed(const std::string& dir, const std::string& name, std::string_view bytes) {
  put_file(dir + "/" + name, bytes);
}

inline std::string slurp(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) std::abort();
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

// Handles -make_seeds=DIR before libFuzzer parses its own flags.
inline void init(int* argc, char*** argv, void (*make_seeds)(const std::string&)) {
  for (int i = 1; i < *argc; ++i) {
    const char* a = (*argv)[i];
    if (std::strncmp(a, "-make_seeds=", 12) == 0) {
      try {
        make_seeds(a + 12);
      } catch (const razor::Error& e) {
        std::fprintf(stderr, "make_seeds: %s\n", e.what());
        std::exit(1);
      }
      std::exit(0);
    }
  }
}

template <class F>
void run(F&& f) {
  try {
    f();
  } catch (const razor::Error&) {
    // the one allowed failure
  }
}

}  // namespace razor_fuzz

#define RAZOR_FUZZ_INIT(make_seeds_fn)                          \
  extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) { \
    razor_fuzz::init(argc, argv, make_seeds_fn);                 \
    return 0;                                                    \
  }

#define RAZOR_FUZZ_ONE_INPUT                                                  \
  static void fuzz_one(const uint8_t* data, size_t size);                     \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {   \
    razor_fuzz::run([&] { fuzz_one(data, size); });                           \
    return 0;                                                                 \
  }                                                                           \
  static void fuzz_one(const uint8_t* data, size_t size)
