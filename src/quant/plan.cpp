// Super-group precision plan: rho parsing, the --bits synonyms, bit accounting.
#include "quant/plan.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace razor {

namespace {

// Strict decimal parse of the whole string (no trailing junk, finite).
bool parse_number(const std::string& s, double& out) {
  if (s.empty() || std::isspace((unsigned char)s[0])) return false;
  const char* b = s.c_str();
  char* e = nullptr;
  errno = 0;
  double v = std::strtod(b, &e);
  if (e == b || *e != '\0' || errno == ERANGE || !std::isfinite(v)) return false;
  out = v;
  return true;
}

// Non-negative integer, whole string.
bool parse_uint(const std::string& s, int64_t& out) {
  if (s.empty() || s.size() > 12) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

struct BitsSynonym {
  const char* text;
  double bits;
  double rho;
};
constexpr BitsSynonym kSynonyms[] = {{"4", 4.0, 1.0}, {"2.79", 2.79, 0.5}, {"1.88", 1.88, 0.125}, {"1.58", 1.58, 0.0}};

}  // namespace

int64_t period_from_rho(double rho) {
  RZ_CHECK(rho >= 0.0 && rho <= 1.0, "rho: must be in [0, 1] (got %g)", rho);
  if (rho == 0.0) return 0;
  const double p = std::floor((1.0 / rho) * (1.0 + 1e-9));
  return p < 1.0 ? 1 : int64_t(p);
}

double parse_rho(const std::string& text, const char* option) {
  const size_t slash = text.find('/');
  if (slash != std::string::npos) {
    int64_t num = 0, den = 0;
    RZ_CHECK(parse_uint(text.substr(0, slash), num) && parse_uint(text.substr(slash + 1), den) && den > 0,
             "%s: '%s' is not a fraction p/q of non-negative integers with q > 0", option, text.c_str());
    RZ_CHECK(num <= den, "%s: rho must be in [0, 1] (got %s)", option, text.c_str());
    return double(num) / double(den);
  }
  double v = 0;
  RZ_CHECK(parse_number(text, v), "%s: '%s' is not a number (expected rho in [0, 1], e.g. 1/8 or 0.125)", option,
           text.c_str());
  RZ_CHECK(v >= 0.0 && v <= 1.0, "%s: rho must be in [0, 1] (got %s)", option, text.c_str());
  return v;
}

double rho_from_bits(const std::string& text, const char* option) {
  double v = 0;
  if (parse_number(text, v))
    for (const BitsSynonym& s : kSynonyms)
      if (std::fabs(v - s.bits) < 0.005) return s.rho;
  fail("%s: '%s' is not a supported bit width (use 4, 2.79, 1.88 or 1.58, or give rho with --rho)", option,
       text.c_str());
}

double parse_precision(const std::string& text, const char* option) {
  for (const BitsSynonym& s : kSynonyms)
    if (text == s.text) return s.rho;
  double v = 0;
  if (text.find('/') == std::string::npos && parse_number(text, v) && v > 1.0) return rho_from_bits(text, option);
  if (text.find('/') == std::string::npos && !parse_number(text, v))
    fail("%s: '%s' is neither a bit width (4, 2.79, 1.88, 1.58) nor a rho in [0, 1] (e.g. 1/8)", option,
         text.c_str());
  return parse_rho(text, option);
}

double nominal_bits(double rho) {
  const int64_t p = period_from_rho(rho);
  if (p == 0) return std::log2(3.0);
  return (4.0 + double(p - 1) * std::log2(3.0)) / double(p);
}

std::string PrecisionPlan::str() const {
  return strfmt("rho=%g (P=%lld) G=%d -> %.4f bits/weight (+%.4f for scales)", rho, (long long)period(), group,
                nominal_bits(rho), 16.0 / group);
}

MatrixEntry MatrixEntry::make(std::string name, int64_t d_out, int64_t d_in, const WeightLayout& layout,
                              bool shared) {
  MatrixEntry e;
  e.name = std::move(name);
  e.d_out = d_out;
  e.d_in = d_in;
  e.layout = layout;
  e.shared = shared;
  return e;
}

BitReport bit_report(const std::vector<MatrixEntry>& matrices) {
  BitReport r;
  double sum_bits = 0, sum_bits_no_scales = 0;
  for (const MatrixEntry& m : matrices) {
    RZ_CHECK(m.d_out >= 0 && m.d_in >= 0, "%s: negative dimension", m.name.c_str());
    if (m.shared) continue;
    const int64_t n = m.d_out * m.d_in;
    r.total_params += n;
    if (!m.layout.quantized()) continue;
    m.layout.validate(m.name.c_str());
    RZ_CHECK(m.d_in % m.layout.group == 0,
             "%s: input dimension %lld is not divisible by the quantization group size %d", m.name.c_str(),
             (long long)m.d_in, m.layout.group);
    r.quantized_params += n;
    // Row-exact: a mixed-rows matrix has ceil(d_out/P) 4-bit rows.
    sum_bits_no_scales += double(n) * m.layout.weight_bits(m.d_out);
    sum_bits += double(n) * m.layout.weight_bits_with_scales(m.d_out);
  }
  if (r.quantized_params > 0) {
    r.avg_bits = sum_bits / double(r.quantized_params);
    r.avg_bits_no_scales = sum_bits_no_scales / double(r.quantized_params);
  }
  if (r.total_params > 0) r.quantized_share = double(r.quantized_params) / double(r.total_params);
  return r;
}

std::string BitReport::str() const {
  return strfmt("%.4f bits/weight (%.4f without scales), %lld of %lld parameters quantized (%.2f%%)", avg_bits,
                avg_bits_no_scales, (long long)quantized_params, (long long)total_params, 100.0 * quantized_share);
}

}  // namespace razor
