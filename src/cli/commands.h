// The subcommands of `razor`, one file each in src/cli/. Each receives argv with
// argv[0] = "razor <command>" and returns the process exit status; user errors are thrown
// as razor::Error and printed by main().
#pragma once

namespace razor {

int cmd_train(int argc, char** argv);
int cmd_generate(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_pretrain(int argc, char** argv);
int cmd_teacher(int argc, char** argv);
int cmd_quantize(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_score(int argc, char** argv);
int cmd_pack(int argc, char** argv);
int cmd_export(int argc, char** argv);
int cmd_import(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_plan(int argc, char** argv);
int cmd_tasks(int argc, char** argv);

// `razor bench <kind>` sub-benchmarks.
int bench_gemm(int argc, char** argv);    // fp32 training GEMM (kernels/gemm*)
int bench_packed(int argc, char** argv);  // packed-weight GEMV/GEMM (kernels/qgemm*)
int bench_model(int argc, char** argv);   // whole-model prefill/decode (src/infer)

}  // namespace razor
