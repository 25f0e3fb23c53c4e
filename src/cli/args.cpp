#include "cli/args.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/cpu.h"
#include "core/error.h"
#include "core/threads.h"

namespace razor {

ArgParser::ArgParser(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

static void split_spec(const std::string& spec, std::string& s, std::string& l) {
  size_t comma = spec.find(',');
  if (comma == std::string::npos) {
    l = spec;
  } else {
    s = spec.substr(0, comma);
    l = spec.substr(comma + 1);
  }
  RZ_ASSERT(l.rfind("--", 0) == 0);
}

void ArgParser::option(const std::string& spec, const std::string& def, const std::string& help) {
  Opt o;
  split_spec(spec, o.short_name, o.long_name);
  o.def = def;
  o.value = def;
  o.help = help;
  opts_.push_back(o);
}

void ArgParser::flag(const std::string& spec, const std::string& help) {
  Opt o;
  split_spec(spec, o.short_name, o.long_name);
  o.is_flag = true;
  o.value = "0";
  o.help = help;
  opts_.push_back(o);
}

void ArgParser::allow_positionals(const std::string& name, const std::string& help) {
  allow_pos_ = true;
  pos_name_ = name;
  pos_help_ = help;
}

ArgParser::Opt* ArgParser::lookup(const std::string& token) {
  for (auto& o : opts_)
    if (token == o.long_name || (!o.short_name.empty() && token == o.short_name)) return &o;
  return nullptr;
}

const ArgParser::Opt& ArgParser::find(const std::string& name) const {
  std::string key = name.rfind("-", 0) == 0 ? name : "--" + name;
  for (auto& o : opts_)
    if (o.long_name == key) return o;
  RZ_ASSERT_MSG(false, ("undeclared option " + name).c_str());
  return opts_[0];
}

bool ArgParser::parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(help_text().c_str(), stdout);
      return false;
    }
    if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (isdigit((unsigned char)a[1]) || a[1] == '.'))) {
      std::string name = a, val;
      bool has_eq = false;
      size_t eq = a.find('=');
      if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
        name = a.substr(0, eq);
        val = a.substr(eq + 1);
        has_eq = true;
      }
      Opt* o = lookup(name);
      if (!o) fail("%s: unknown option '%s' (see %s --help)", command_.c_str(), name.c_str(), command_.c_str());
      if (o->is_flag) {
        if (has_eq) fail("%s: option %s takes no value", command_.c_str(), o->long_name.c_str());
        o->value = "1";
      } else {
        if (!has_eq) {
          if (i + 1 >= argc) fail("%s: option %s needs a value", command_.c_str(), o->long_name.c_str());
          val = argv[++i];
        }
        o->value = val;
      }
      o->set = true;
      continue;
    }
    if (!allow_pos_) fail("%s: unexpected argument '%s' (see %s --help)", command_.c_str(), a.c_str(), command_.c_str());
    positionals_.push_back(a);
  }
  return true;
}

bool ArgParser::given(const std::string& name) const { return find(name).set; }
const std::string& ArgParser::str(const std::string& name) const { return find(name).value; }
bool ArgParser::on(const std::string& name) const { return find(name).value == "1"; }

int64_t ArgParser::i64(const std::string& name) const {
  const Opt& o = find(name);
  const char* s = o.value.c_str();
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s, &end, 10);
  if (o.value.empty() || *end != '\0' || errno != 0)
    fail("%s: option %s expects an integer, got '%s'", command_.c_str(), o.long_name.c_str(), s);
  return v;
}

int64_t ArgParser::i64_in(const std::string& name, int64_t lo, int64_t hi) const {
  int64_t v = i64(name);
  if (v < lo || v > hi)
    fail("%s: option %s must be in [%lld, %lld], got %lld", command_.c_str(), find(name).long_name.c_str(),
         (long long)lo, (long long)hi, (long long)v);
  return v;
}

double ArgParser::f64(const std::string& name) const {
  const Opt& o = find(name);
  const char* s = o.value.c_str();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s, &end);
  // Accept fractions like "1/8" (rho).
  if (*end == '/' && end != s) {
    char* end2 = nullptr;
    double den = std::strtod(end + 1, &end2);
    if (*end2 == '\0' && den != 0) {
      v /= den;
      end = end2;
    }
  }
  if (o.value.empty() || *end != '\0' || errno != 0 || !std::isfinite(v))
    fail("%s: option %s expects a number, got '%s'", command_.c_str(), o.long_name.c_str(), s);
  return v;
}

double ArgParser::f64_in(const std::string& name, double lo, double hi) const {
  double v = f64(name);
  if (v < lo || v > hi)
    fail("%s: option %s must be in [%g, %g], got %g", command_.c_str(), find(name).long_name.c_str(), lo, hi, v);
  return v;
}

std::string ArgParser::help_text() const {
  std::string s = "usage: " + command_ + " [options]";
  if (allow_pos_) s += " " + pos_name_;
  s += "\n\n" + summary_ + "\n\noptions:\n";
  for (auto& o : opts_) {
    std::string left = "  ";
    if (!o.short_name.empty()) left += o.short_name + ", ";
    left += o.long_name;
    if (!o.is_flag) left += " V";
    if (left.size() < 26) left.append(26 - left.size(), ' ');
    else left += "\n" + std::string(26, ' ');
    s += left + o.help;
    if (!o.is_flag && !o.def.empty()) s += " (default: " + o.def + ")";
    s += "\n";
  }
  if (allow_pos_) s += "  " + pos_name_ + std::string(pos_name_.size() < 24 ? 24 - pos_name_.size() : 1, ' ') + pos_help_ + "\n";
  s += "  -h, --help              show this help\n";
  return s;
}

void apply_threads(int64_t n) {
  if (n <= 0) return;
  const int used = set_threads_for_cores(int(std::min<int64_t>(n, 1 << 20)));
  if (used < n)
    std::fprintf(stderr,
                 "razor: --threads %lld: %d cores available to this process; using %d threads (more threads than "
                 "cores only wait for each other at every barrier)\n",
                 (long long)n, used, used);
}

int64_t apply_threads_option(const ArgParser& a, int64_t lo, int64_t hi) {
  if (!a.given("threads") && a.str("threads").empty()) return 0;
  const int64_t n = a.i64_in("threads", lo, hi);
  apply_threads(n);
  return n;
}

void apply_isa_option(const ArgParser& a) {
  if (!a.given("isa")) return;
  const Isa want = parse_isa(a.str("isa"));
  RZ_CHECK(isa_supported(want), "--isa: %s is not supported by this CPU (%s)", isa_name(want), cpu_summary().c_str());
  set_isa(want);
}

}  // namespace razor
