// Calibration sequences for GPTQ / AWQ (nn/calib_ptq.h): S windows of T tokens spread evenly
// over the training split of a data source (default corpus, .txt, .ids or .tok, as
// prepare_data reads them). Deterministic: the same source gives the same windows.
// Deliberately not here: the algorithms themselves.
#pragma once
#include <cstdint>
#include <string>

#include "nn/calib_ptq.h"
#include "train/shards.h"

namespace razor {

// Window i starts at floor(i · (n - T) / (S - 1)) (S = 1: at 0); windows overlap when the shard
// has fewer than S·T tokens. Throws when the shard is shorter than T.
CalibSet calibration_windows(const TokenShard& shard, int64_t S, int64_t T, const std::string& what);

// prepare_data(data, tokenizer_path, cache_dir)'s training split -> calibration_windows.
CalibSet calibration_set(const std::string& data, const std::string& tokenizer_path, int64_t S, int64_t T,
                         const std::string& cache_dir = "data/cache");

}  // namespace razor
