// razor teacher: runs the teacher once over a token shard (or a text file, tokenized with the
// teacher's tokenizer.json) and writes the teacher store; resumes an interrupted dump.
// `--stats` prints the size of an existing store instead.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/threads.h"
#include "core/checksum.h"
#include "distill/store.h"
#include "train/teacher_dump.h"
#include "train/data.h"
#include "train/shards.h"

namespace razor {

int cmd_teacher(int argc, char** argv) {
  ArgParser ap(argv[0],
               "Runs the teacher (no grad) over fixed windows of the training tokens (sequence i = tokens "
               "[i*T, i*T+T+1)), or one record per sequence for chat data (.jsonl) and --records, and writes the "
               "teacher store: hidden states (every layer, or per sequence the layers AFD selects: --taps), top-K (or "
               "full) log-probs, entropy, layer cosines, "
               "the loss mask (chat: assistant tokens only). An interrupted dump resumes where it stopped.");
  ap.option("--teacher", "data/teacher", "teacher checkpoint directory (Hugging Face layout)");
  ap.option("--data", "default",
            "training data: default | FILE.txt | FILE.ids | FILE.jsonl (chat) | FILE.tok (see razor train --help)");
  ap.flag("--records", "one .txt document / .ids line per sequence (padded or truncated to --seq, never windowed)");
  ap.option("--cache", "data/cache", "where token shards built from text are cached");
  ap.option("--out", "", "store directory (required)");
  ap.option("--seq", "256", "sequence length T");
  ap.option("--topk", "64", "teacher log-probs kept per position (top-K + tail mass)");
  ap.flag("--full-logits", "store the full log-prob distribution instead of top-K (small vocabularies)");
  ap.option("--logp", "", "log-prob dtype f32|f16 (default: f32 for top-K, f16 for full)");
  ap.option("--hidden", "bf16", "hidden-state dtype: bf16 | int8 (per-token scale)");
  ap.option("--taps", "auto",
            "feature taps kept: all (L+1) | selected (per sequence the --afd-k taps AFD's adaptive rule picks from "
            "the teacher's own cosines; trains --feature adaptive only) | auto (selected when every tap would take "
            "more than 8 KiB per token)");
  ap.option("--afd-k", "3", "taps kept per sequence by --taps selected (AFD's k; train with --afd-k <= this)");
  ap.option("--sequences", "0", "sequences to store (0 = every full window)");
  ap.option("--batch", "4", "sequences per teacher forward");
  ap.option("--shard-sequences", "64", "sequences per shard file");
  ap.option("--threads", "0", "threads (0 = default)");
  ap.flag("--stats", "print the size of the existing store --out and exit");
  if (!ap.parse(argc, argv)) return 0;
  if (!ap.given("out")) fail("--out: required (the store directory)");
  const std::string out = ap.str("out");
  apply_threads_option(ap, 0, 4096);
  if (ap.on("stats")) {
    StoreReader r(out, StoreVerify::Lazy);
    StoreStats s = r.stats();
    const StoreInfo& i = r.info();
    std::printf("store            %s\n", out.c_str());
    std::printf("teacher          %s (%s)\n", i.teacher_id.c_str(), hex64(i.teacher_hash).c_str());
    std::printf("shape            T=%lld L=%lld C=%lld V=%lld\n", (long long)i.seq_len, (long long)i.num_layers,
                (long long)i.hidden_size, (long long)i.vocab_size);
    std::printf("contents         hidden %s, logits %s", to_string(i.hidden_dtype), to_string(i.logits));
    if (i.logits == LogitStorage::TopK) std::printf(" K=%lld", (long long)i.top_k);
    std::printf(", logp %s\n", to_string(i.logp_dtype));
    if (i.selected_taps > 0)
      std::printf("feature taps     %lld of %lld per sequence (AFD's selection, --taps selected)\n",
                  (long long)i.selected_taps, (long long)(i.num_layers + 1));
    else
      std::printf("feature taps     all %lld\n", (long long)(i.num_layers + 1));
    std::printf("sequences        %lld (%lld tokens, %lld shards)\n", (long long)s.sequences, (long long)s.tokens,
                (long long)s.shards);
    std::printf("bytes/token      %.1f\n", s.bytes_per_token);
    std::printf("size             %lld bytes (%.2f MB)\n", (long long)s.total_bytes, s.total_bytes / 1e6);
    return 0;
  }
  TeacherDumpOptions o;
  o.seq_len = ap.i64_in("seq", 2, 1 << 20);
  o.logits = ap.on("full-logits") ? LogitStorage::Full : LogitStorage::TopK;
  o.top_k = ap.i64_in("topk", 1, 1 << 20);
  if (ap.given("topk") && ap.on("full-logits")) fail("--topk: not with --full-logits");
  try {
    o.logp_dtype = ap.given("logp") ? parse_logp_dtype(ap.str("logp"))
                                    : (o.logits == LogitStorage::Full ? LogpDtype::F16 : LogpDtype::F32);
  } catch (const Error& e) {
    fail("--logp: %s", e.what());
  }
  try {
    o.hidden = parse_hidden_dtype(ap.str("hidden"));
  } catch (const Error& e) {
    fail("--hidden: %s", e.what());
  }
  try {
    o.taps = parse_tap_storage(ap.str("taps"));
  } catch (const Error& e) {
    fail("--taps: %s", e.what());
  }
  o.afd_k = int(ap.i64_in("afd-k", 1, 255));
  o.max_sequences = ap.i64_in("sequences", 0, int64_t(1) << 40);
  o.batch = ap.i64_in("batch", 1, 4096);
  o.shard_sequences = ap.i64_in("shard-sequences", 1, 1 << 20);
  const std::string teacher = ap.str("teacher");
  // Under mpirun, rank 0 builds the token cache first, then every rank writes its shards.
  const bool lead = dist_rank() == 0;
  std::string shard_path;
  const bool records = ap.on("records");
  if (lead) shard_path = prepare_data(ap.str("data"), teacher + "/tokenizer.json", ap.str("cache"), records).train_shard;
  dist_barrier();
  if (!lead) shard_path = prepare_data(ap.str("data"), teacher + "/tokenizer.json", ap.str("cache"), records).train_shard;
  TokenShard shard(shard_path);
  TeacherDumpResult r = dump_teacher_store(teacher, shard, out, o);
  if (!lead) return 0;
  if (r.resumed_from > 0 && r.sequences == r.resumed_from)
    std::printf("%s: already complete (%lld sequences)\n", out.c_str(), (long long)r.sequences);
  else
    std::printf("%s: %lld sequences (%lld resumed), %.1f s\n", out.c_str(), (long long)r.sequences,
                (long long)r.resumed_from, r.seconds);
  return 0;
}

}  // namespace razor
