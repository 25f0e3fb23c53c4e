// The calibration options of `razor quantize | eval | plan` for --ptq gptq | awq: declared once,
// validated once (an option of the other method, or any of them with a method that takes no
// calibration, is an error naming it), and the calibration set they select.
#pragma once
#include <string>

#include "cli/args.h"
#include "nn/ptq_model.h"

namespace razor {

void add_calib_ptq_options(ArgParser& a);
// method: the --ptq method in use. Throws naming the option at fault.
CalibPtqOptions calib_ptq_options(const ArgParser& a, PtqMethod method);
// The --calib windows (training split), tokenized with tokenizer_path when text; --calib-seq is
// checked against m's context first.
CalibSet load_calib_set(const ArgParser& a, const std::string& tokenizer_path, const Model& m);
// The weight quantization of `razor quantize | eval`: --rho or `bits` (the --bits value or the
// command's default), --group, --beta, then the per-tensor layouts of --plan (checked against m).
QuantSpec quant_spec_option(const ArgParser& a, const std::string& bits, PtqMethod method, const Model& m);
// One line about a GPTQ / AWQ run (damping, forced codes, α per group) on stderr.
void print_calib_report(const CalibPtqReport& r, PtqMethod method, double seconds);

}  // namespace razor
