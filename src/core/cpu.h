// CPU features, detected once at start-up, and the instruction-set tier razor's kernels
// dispatch on. RAZOR_ISA=ref|avx2|avx512|neon in the environment (or set_isa()) forces a
// lower tier, so tests and benchmarks can exercise every path the machine can run.
#pragma once
#include <string>

namespace razor {

enum class Isa { Ref = 0, Neon = 1, Avx2 = 2, Avx512 = 3 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512bf16 = false;
  bool avxvnni = false;
  bool gfni = false;  // GF2P8AFFINEQB (the zmm form needs avx512f as well)
  bool neon = false, dotprod = false;
};

const CpuFeatures& cpu_features();
// Best tier this CPU supports.
Isa best_isa();
// Tier kernels should use now: min(best_isa(), forced tier).
Isa active_isa();
// Force a tier (clamped to what the CPU supports). Returns the previous active tier.
Isa set_isa(Isa isa);
bool isa_supported(Isa isa);
const char* isa_name(Isa isa);
// Parses "ref", "avx2", "avx512", "neon"; throws razor::Error otherwise.
Isa parse_isa(const std::string& s);
std::string cpu_summary();

}  // namespace razor
