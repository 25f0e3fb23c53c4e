// Training checkpoints: a directory that a kill at any moment never destroys.
//
//   <dir>/params.f32, adam_m.f32, adam_v.f32   flat fp32 arrays, each:
//        magic "RZF32ARR" | u32 version 1 | u32 header_bytes 32 | u64 count |
//        u64 FNV-1a 64 of the data | count * f32
//   <dir>/state.json    format, version, step, data_cursor, rng (4 x hex u64), n_params and
//                       the checksum of every array file
//   <dir>/config.json   the run configuration (any JSON the caller gives)
//
// save_checkpoint writes everything into <dir>.tmp (fsync'd file by file, then the
// directory), then renames <dir> -> <dir>.old, <dir>.tmp -> <dir>, and removes <dir>.old.
// At every instant either <dir> or <dir>.old is a complete checkpoint; load_checkpoint
// uses <dir>, or <dir>.old when <dir> is missing (a kill between the two renames). A
// leftover <dir>.tmp is never read and is removed by the next save.
// Deliberately not here: what the parameters mean (the model's flat layout), the run loop.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "io/json.h"

namespace razor {

struct CheckpointMeta {
  int64_t step = 0;           // optimizer steps done
  uint64_t data_cursor = 0;   // the sampler position (for BatchSampler: the step)
  std::array<uint64_t, 4> rng{};  // Rng::s
  Json config;                // run configuration, written as config.json
};

struct Checkpoint {
  CheckpointMeta meta;
  std::vector<float> params, adam_m, adam_v;
  std::string loaded_from;  // the directory actually read (<dir> or <dir>.old)
};

// Test hook: throw after this many files of the new checkpoint were written (-1: never),
// simulating a crash part-way through a save.
struct CheckpointSaveOptions {
  int fail_after_files = -1;
};

void save_checkpoint(const std::string& dir, const CheckpointMeta& meta, const float* params, const float* adam_m,
                     const float* adam_v, size_t n, const CheckpointSaveOptions& opt = {});

// True when load_checkpoint(dir) has something to read (<dir> or <dir>.old with a state.json).
bool checkpoint_exists(const std::string& dir);

// Loads and validates everything (magic, sizes, counts, checksums, state.json fields);
// errors name the file and field at fault.
Checkpoint load_checkpoint(const std::string& dir);

}  // namespace razor
