#include "core/cpu.h"

#include <atomic>
#include <cstdlib>

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace razor {

static CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    f.fma = (c >> 12) & 1;
    f.f16c = (c >> 29) & 1;
    bool osxsave = (c >> 27) & 1;
    unsigned long long xcr0 = 0;
    if (osxsave) {
      unsigned lo, hi;
      __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      xcr0 = (unsigned long long)hi << 32 | lo;
    }
    bool ymm = (xcr0 & 0x6) == 0x6;
    bool zmm = (xcr0 & 0xe6) == 0xe6;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
      f.avx2 = ymm && ((b >> 5) & 1);
      f.avx512f = zmm && ((b >> 16) & 1);
      f.avx512bw = zmm && ((b >> 30) & 1);
      f.avx512vl = zmm && ((b >> 31) & 1);
      f.avx512vnni = zmm && ((c >> 11) & 1);
      f.gfni = (c >> 8) & 1;
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
      f.avx512bf16 = zmm && ((a >> 5) & 1);
      f.avxvnni = ymm && ((a >> 4) & 1);
    }
  }
#endif
#if defined(__aarch64__)
  f.neon = true;
#if defined(__linux__)
  unsigned long hw = getauxval(AT_HWCAP);
  f.dotprod = (hw >> 20) & 1;  // HWCAP_ASIMDDP
#endif
#endif
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::Ref: return true;
    case Isa::Neon: return f.neon;
    case Isa::Avx2: return f.avx2 && f.fma && f.f16c;
    case Isa::Avx512: return f.avx512f && f.avx512bw && f.avx512vl && f.avx2 && f.fma;
  }
  return false;
}

Isa best_isa() {
  if (isa_supported(Isa::Avx512)) return Isa::Avx512;
  if (isa_supported(Isa::Avx2)) return Isa::Avx2;
  if (isa_supported(Isa::Neon)) return Isa::Neon;
  return Isa::Ref;
}

static std::atomic<int> g_forced{-1};

static Isa initial_isa() {
  const char* e = std::getenv("RAZOR_ISA");
  if (e && *e) {
    Isa want = parse_isa(e);
    return isa_supported(want) ? want : best_isa();
  }
  return best_isa();
}

Isa active_isa() {
  int v = g_forced.load(std::memory_order_relaxed);
  if (v < 0) {
    v = int(initial_isa());
    g_forced.store(v);
  }
  return Isa(v);
}

Isa set_isa(Isa isa) {
  Isa prev = active_isa();
  if (!isa_supported(isa)) isa = best_isa();
  g_forced.store(int(isa));
  return prev;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Ref: return "ref";
    case Isa::Neon: return "neon";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

Isa parse_isa(const std::string& s) {
  if (s == "ref") return Isa::Ref;
  if (s == "avx2") return Isa::Avx2;
  if (s == "avx512") return Isa::Avx512;
  if (s == "neon") return Isa::Neon;
  fail("RAZOR_ISA / --isa: unknown instruction set '%s' (use ref, avx2, avx512 or neon)", s.c_str());
}

std::string cpu_summary() {
  const CpuFeatures& f = cpu_features();
  std::string s;
  auto add = [&](bool b, const char* n) {
    if (b) s += (s.empty() ? "" : " "), s += n;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vnni, "avx512vnni");
  add(f.avx512bf16, "avx512bf16");
  add(f.avxvnni, "avxvnni");
  add(f.gfni, "gfni");
  add(f.neon, "neon");
  add(f.dotprod, "dotprod");
  return s.empty() ? std::string("(scalar only)") : s;
}

}  // namespace razor
