// Command-line options for one subcommand: declared with defaults and help, parsed
// strictly (unknown flags and malformed values are errors naming the option; values are
// never clamped), and printed by --help.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace razor {

class ArgParser {
 public:
  // command: e.g. "razor train"; summary: one paragraph shown by --help.
  ArgParser(std::string command, std::string summary);
  // An option taking a value. spec: "--name" or "-n,--name". def: default ("" = none).
  void option(const std::string& spec, const std::string& def, const std::string& help);
  // A boolean flag (no value).
  void flag(const std::string& spec, const std::string& help);
  // Allow positional arguments (collected in positionals()); `name` shows in usage.
  void allow_positionals(const std::string& name, const std::string& help);
  // Parses argv[first..argc). Returns false when --help was printed (caller exits 0).
  // Throws razor::Error for unknown options, missing values, or unexpected positionals.
  bool parse(int argc, char** argv, int first = 1);

  bool given(const std::string& name) const;  // set on the command line
  const std::string& str(const std::string& name) const;
  int64_t i64(const std::string& name) const;              // errors name the option
  int64_t i64_in(const std::string& name, int64_t lo, int64_t hi) const;
  double f64(const std::string& name) const;
  double f64_in(const std::string& name, double lo, double hi) const;
  bool on(const std::string& name) const;  // flag value
  const std::vector<std::string>& positionals() const { return positionals_; }
  std::string help_text() const;

 private:
  struct Opt {
    std::string long_name, short_name, def, help, value;
    bool is_flag = false, set = false;
  };
  const Opt& find(const std::string& name) const;
  Opt* lookup(const std::string& token);
  std::string command_, summary_, pos_name_, pos_help_;
  bool allow_pos_ = false;
  std::vector<Opt> opts_;
  std::vector<std::string> positionals_;
};

// --threads N for a command: N threads, at most the cores this process may use; when it
// uses fewer it says so on stderr ("--threads 10: 2 cores available; using 2 threads").
// n <= 0 leaves the default (OMP_NUM_THREADS or all cores).
void apply_threads(int64_t n);
// The --threads option of a command, applied: its value checked against [lo, hi] (commands
// whose default is "0" take 0 = the default; those with no default value want N >= 1) and
// passed to apply_threads. Returns the value, 0 when the option has no value.
int64_t apply_threads_option(const ArgParser& a, int64_t lo, int64_t hi);
// The --isa option of a benchmark: forces that kernel tier, an error when this CPU cannot run
// it; nothing when not given.
void apply_isa_option(const ArgParser& a);

}  // namespace razor
