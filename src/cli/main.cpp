// razor: entry point and subcommand table. User errors (razor::Error) are printed as
// `razor: error: ...` with exit status 1; --help lists every command.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"
#include "core/cpu.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/log.h"

namespace razor {

struct Command {
  const char* name;
  int (*fn)(int, char**);
  const char* summary;
};

static const Command kCommands[] = {
    {"train", cmd_train, "the main job: quantization-aware distillation of a low-bit student"},
    {"generate", cmd_generate, "stream text from a packed model (-p \"prompt\")"},
    {"bench", cmd_bench, "throughput: model prefill/decode, or `bench gemm`, `bench gemv`"},
    {"pretrain", cmd_pretrain, "train a full-precision model from scratch (how the default teacher is made)"},
    {"teacher", cmd_teacher, "run the teacher once and write its activations to a teacher store"},
    {"quantize", cmd_quantize, "post-training quantization baselines (RTN, RTN+gamma, PTQTP)"},
    {"eval", cmd_eval, "validation perplexity and task accuracy (full, fake-quant or packed; --task FILE.jsonl)"},
    {"score", cmd_score, "per-token log-probabilities of an id sequence"},
    {"pack", cmd_pack, "pack a student into a .razor file of integer blocks"},
    {"export", cmd_export, "export a model for other engines (--gguf for llama.cpp)"},
    {"import", cmd_import, "import a llama.cpp GGUF into a packed .razor file (--gguf IN -o OUT)"},
    {"tokenize", cmd_tokenize, "text to token ids and back with a Hugging Face tokenizer.json"},
    {"plan", cmd_plan, "per-matrix precision allocation under a bit budget"},
    {"tasks", cmd_tasks, "the built-in task suite: held-out items as JSONL, the mixed training text"},
};

static void print_help() {
  std::printf(
      "razor: train low-bit (1.58-4 bit) students of language models by distillation, and run them.\n\n"
      "usage: razor <command> [options]     (razor <command> --help for its options)\n\ncommands:\n");
  for (const Command& c : kCommands) std::printf("  %-10s %s\n", c.name, c.summary);
  std::printf("\nCPU: %s; kernels use: %s\n", cpu_summary().c_str(), isa_name(active_isa()));
}

}  // namespace razor

int main(int argc, char** argv) {
  using namespace razor;
  set_log_sink(stderr);  // the library's notes (core/log.h): the CLI owns the sink
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    print_help();
    return 0;
  }
  for (const Command& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    std::string name = std::string("razor ") + c.name;
    argv[1] = const_cast<char*>(name.c_str());
    try {
      return c.fn(argc - 1, argv + 1);
    } catch (const Error& e) {
      if (dist_size() > 1) std::fprintf(stderr, "razor: error: rank %d: %s\n", dist_rank(), e.what());
      else std::fprintf(stderr, "razor: error: %s\n", e.what());
      std::fflush(stderr);
      dist_abort(1);  // under mpirun the other ranks may wait in a collective: end the job
      return 1;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "razor: error: out of memory\n");
      std::fflush(stderr);
      dist_abort(1);
      return 1;
    }
  }
  std::fprintf(stderr, "razor: error: unknown command '%s' (see razor --help)\n", argv[1]);
  return 1;
}
