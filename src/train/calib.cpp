#include "train/calib.h"

#include "core/error.h"
#include "train/data.h"

namespace razor {

CalibSet calibration_windows(const TokenShard& shard, int64_t S, int64_t T, const std::string& what) {
  RZ_CHECK(S >= 1 && T >= 1, "%s: need at least one calibration sequence of at least one token", what.c_str());
  const int64_t n = int64_t(shard.size());
  RZ_CHECK(n >= T, "%s: %lld tokens, fewer than one calibration sequence of %lld", what.c_str(), (long long)n,
           (long long)T);
  CalibSet c;
  c.S = S;
  c.T = T;
  c.ids.resize(size_t(S * T));
  for (int64_t i = 0; i < S; ++i) {
    const int64_t start = S == 1 ? 0 : int64_t((__int128)i * (n - T) / (S - 1));
    shard.read(uint64_t(start), uint64_t(T), c.ids.data() + i * T);
  }
  return c;
}

CalibSet calibration_set(const std::string& data, const std::string& tokenizer_path, int64_t S, int64_t T,
                         const std::string& cache_dir) {
  PreparedData d = prepare_data(data, tokenizer_path, cache_dir);
  TokenShard shard(d.train_shard);
  return calibration_windows(shard, S, T, "--calib " + data);
}

}  // namespace razor
