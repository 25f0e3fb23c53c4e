// `razor tasks`: the built-in task suite as files. --write DIR writes every task's held-out
// items as JSONL (what `razor eval --task` and any other engine can score), and the training
// text of the mix: the default corpus's training documents interleaved with the tasks'
// training documents (DIR/train.txt) and the corpus's validation text (DIR/valid.txt), so
// `razor pretrain --data DIR` trains on the mix and validates on the usual windows.
// --show TASK prints a few held-out items and training documents of one task.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "io/file_util.h"
#include "train/data.h"
#include "train/shards.h"
#include "train/task_eval.h"
#include "train/tasks.h"

namespace razor {

int cmd_tasks(int argc, char** argv) {
  ArgParser a(argv[0],
              "The built-in task suite (arith, word, knowledge, knowledge_mc, knowledge_facts, nextsent_mc; docs/tasks.md). --write DIR "
              "writes DIR/<task>.jsonl (held-out items for `razor eval --task`), DIR/train.txt (the default corpus's "
              "training text mixed with the tasks' training documents; `razor pretrain --data DIR`) and DIR/valid.txt "
              "(the corpus's validation text). --show TASK prints examples.");
  a.option("--write", "", "output directory");
  a.option("--show", "", "print examples of one task (items and training documents)");
  a.option("--items", "500", "held-out items per task in the JSONL files");
  // The defaults are --data default's mix (train/data.h).
  const TaskSuiteConfig def = default_mix_suite();
  a.option("--mix", strfmt("%g", kDefaultTaskMix), "share of task text in DIR/train.txt, by bytes (0: the corpus alone)");
  a.option("--seed", strfmt("%llu", (unsigned long long)def.seed),
           "suite seed (the knowledge world and every draw; the split never depends on it)");
  a.option("--people", strfmt("%d", def.world_people), "people in the knowledge world");
  a.option("--knowledge", strfmt("%g", def.knowledge_weight),
           "weight of the knowledge documents in the task text (1: 25% statements + 10% questions before scaling)");
  a.flag("--jsonl-only", "write only the JSONL files");
  if (!a.parse(argc, argv)) return 0;
  TaskSuiteConfig cfg;
  cfg.seed = uint64_t(a.i64("seed"));
  cfg.world_people = int(a.i64_in("people", 1, 100000));
  cfg.knowledge_weight = a.f64_in("knowledge", 0.0, 100.0);
  const size_t items = size_t(a.i64_in("items", 1, 1000000));
  const double mix = a.f64_in("mix", 0.0, 0.99);
  const std::string heldout = suite_heldout_text();

  if (!a.str("show").empty()) {
    const std::string task = a.str("show");
    for (const TaskItem& it : task_heldout_items(task, cfg, 3, heldout)) std::printf("%s\n", task_item_json(it).c_str());
    TaskSuiteConfig small = cfg;
    std::vector<std::string> docs;
    if (task == "arith") arith_documents(small, 1, docs);
    else if (task == "word") word_documents(small, 1, docs);
    else if (task.rfind("knowledge", 0) == 0) {  // knowledge, knowledge_mc, knowledge_facts
      knowledge_statement_documents(small, 1, docs);
      knowledge_question_documents(small, 1, docs);
    }
    for (const std::string& d : docs) std::printf("--- training document\n%s\n", d.c_str());
    return 0;
  }
  RZ_CHECK(!a.str("write").empty(), "razor tasks: give --write DIR (or --show TASK); see --help");
  const std::string dir = a.str("write");
  make_dirs(dir);
  for (const std::string& t : builtin_task_names()) {
    std::vector<TaskItem> its = task_heldout_items(t, cfg, items, heldout);
    if (its.empty()) {
      std::fprintf(stderr, "razor: %s: skipped (no held-out corpus text in %s/valid.txt)\n", t.c_str(),
                   default_corpus_dir().c_str());
      continue;
    }
    std::string out;
    for (const TaskItem& it : its) out += task_item_json(it) + "\n";
    write_file_atomic(dir + "/" + t + ".jsonl", out);
    std::printf("%s/%s.jsonl: %zu items\n", dir.c_str(), t.c_str(), its.size());
  }
  if (a.on("jsonl-only")) return 0;
  const std::string cdir = default_corpus_dir();
  if (!path_exists(cdir + "/train.txt") || !path_exists(cdir + "/valid.txt"))
    fail("--write: the training text needs the default corpus in %s (run `bash tools/fetch_corpus.sh` or any "
         "`razor eval` once), or give --jsonl-only",
         cdir.c_str());
  const std::string corpus = read_file(cdir + "/train.txt");
  std::vector<std::string> corpus_docs;
  for (std::string_view d : split_documents(corpus)) corpus_docs.emplace_back(d);
  const std::vector<std::string> docs = mix_training_documents(corpus_docs, mix, cfg);
  std::string text;
  size_t task_bytes = 0;
  for (const std::string& d : docs) {
    if (!text.empty()) text += "\n\n";
    text += d;
    task_bytes += d.size();
  }
  for (const std::string& d : corpus_docs) task_bytes -= d.size();
  text += "\n";
  write_file_atomic(dir + "/train.txt", text);
  write_file_atomic(dir + "/valid.txt", read_file(cdir + "/valid.txt"));
  std::printf("%s/train.txt: %zu documents, %.2f MB (task documents %.2f MB, mix %.2f); %s/valid.txt: the corpus's\n",
              dir.c_str(), docs.size(), double(text.size()) / 1e6, double(task_bytes) / 1e6, mix, dir.c_str());
  return 0;
}

}  // namespace razor
