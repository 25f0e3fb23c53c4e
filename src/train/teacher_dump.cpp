#include "train/teacher_dump.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "core/checksum.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/threads.h"
#include "io/json.h"
#include "nn/model.h"
#include "io/file_util.h"
#include "train/metrics.h"
#include "train/shards.h"

namespace razor {

uint64_t teacher_checkpoint_hash(const std::string& dir) {
  std::vector<uint64_t> parts;
  std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  if (path_exists(single)) {
    parts.push_back(hash64_file(single));
  } else if (path_exists(index)) {
    Json idx = Json::parse(read_file(index), index);
    std::set<std::string> files;  // sorted, each once: the order is fixed whatever the map's order
    for (const auto& kv : idx.at("weight_map", index.c_str()).members())
      files.insert(kv.second.as_string((index + ": weight_map").c_str()));
    for (const std::string& f : files) parts.push_back(hash64_file(dir + "/" + f));
  } else {
    fail("%s: no model.safetensors or model.safetensors.index.json (not a teacher checkpoint)", dir.c_str());
  }
  parts.push_back(hash64_file(dir + "/config.json"));
  return hash64(parts.data(), parts.size() * sizeof(uint64_t));
}

uint64_t tokenizer_file_hash(const std::string& dir) {
  std::string p = dir + "/tokenizer.json";
  return path_exists(p) ? hash64_file(p) : 0;
}

int64_t teacher_dump_sequences(const TokenShard& data, const TeacherDumpOptions& opt) {
  int64_t n = int64_t(data_sequence_count(data, int(opt.seq_len)));
  if (opt.max_sequences > 0) n = std::min(n, opt.max_sequences);
  return n;
}

TeacherDumpResult dump_teacher_store(const std::string& teacher_dir, const TokenShard& data,
                                     const std::string& store_dir, const TeacherDumpOptions& opt) {
  RZ_CHECK(opt.seq_len >= 2, "--seq: must be at least 2 (got %lld)", (long long)opt.seq_len);
  RZ_CHECK(opt.batch >= 1, "teacher batch must be >= 1 (got %lld)", (long long)opt.batch);
  double t0 = now_seconds();
  std::unique_ptr<Model> teacher = Model::load(teacher_dir, /*trainable=*/false);
  const ModelConfig& cfg = teacher->cfg;
  if (int64_t(data.vocab_size()) > cfg.vocab_size)
    fail("%s: token vocabulary %u is larger than the teacher's (%lld): tokenized with another tokenizer?",
         data.path().c_str(), data.vocab_size(), (long long)cfg.vocab_size);
  const int64_t T = opt.seq_len;
  const int64_t total = teacher_dump_sequences(data, opt);
  if (total < 1)
    fail("%s: %llu tokens give no window of %lld + 1 tokens", data.path().c_str(), (unsigned long long)data.size(),
         (long long)T);
  if (const uint64_t cut = truncated_records(data, int(T)); cut > 0 && opt.progress)
    std::fprintf(opt.progress, "note: %llu of %llu records are longer than --seq %lld + 1 tokens and are truncated\n",
                 (unsigned long long)cut, (unsigned long long)data.n_docs(), (long long)T);

  StoreInfo info;
  info.teacher_id = teacher_dir;
  info.teacher_hash = teacher_checkpoint_hash(teacher_dir);
  info.tokenizer_hash = tokenizer_file_hash(teacher_dir);
  info.seq_len = T;
  info.num_layers = cfg.num_hidden_layers;
  info.hidden_size = cfg.hidden_size;
  info.vocab_size = cfg.vocab_size;
  info.hidden_dtype = opt.hidden;
  info.logits = opt.logits;
  info.top_k = opt.logits == LogitStorage::TopK ? std::min(opt.top_k, cfg.vocab_size) : opt.top_k;
  info.logp_dtype = opt.logp_dtype;
  info.shard_sequences = opt.shard_sequences;
  info.selected_taps = resolve_selected_taps(opt.taps, opt.afd_k, info);
  info.validate();

  const int ranks = opt.ranks > 0 ? opt.ranks : dist_size();
  const int rank = opt.ranks > 0 ? opt.rank : dist_rank();
  RZ_CHECK(rank >= 0 && rank < ranks, "teacher dump: rank %d out of [0, %d)", rank, ranks);
  FILE* progress_out = rank == 0 ? opt.progress : nullptr;  // one progress line per job

  StoreWriter writer(store_dir, info);
  TeacherDumpResult res;
  res.resumed_from = writer.next_sequence();
  if (writer.complete()) {
    res.sequences = writer.next_sequence();
    res.complete = true;
    res.seconds = now_seconds() - t0;
    return res;
  }
  if (writer.next_sequence() > total)
    fail("%s: the store already holds %lld sequences but the data gives only %lld", store_dir.c_str(),
         (long long)writer.next_sequence(), (long long)total);
  // Every writer is constructed (leftover temporary shards deleted) before any rank writes.
  if (ranks > 1) dist_barrier();

  NoGradGuard no_grad;
  const int64_t L = cfg.num_hidden_layers, C = cfg.hidden_size, V = cfg.vocab_size;
  std::vector<int32_t> windows, inputs;
  std::vector<uint8_t> masks;
  int64_t written = 0;
  // Runs the teacher over sequences [first, end) into the writer's open (or next) shard;
  // false when the stop_after hook ended it early.
  auto write_range = [&](int64_t first, int64_t end, ProgressLine& progress, int64_t done_before) {
    for (; first < end;) {
      int64_t B = std::min(opt.batch, end - first);
      if (opt.stop_after >= 0) B = std::min(B, opt.stop_after - written);
      if (B <= 0) return false;
      windows.assign(size_t(B * (T + 1)), 0);
      masks.assign(size_t(B * (T + 1)), 0);
      inputs.assign(size_t(B * T), 0);
      for (int64_t b = 0; b < B; ++b) {
        data_sequence(data, int(T), uint64_t(first + b), &windows[size_t(b * (T + 1))], &masks[size_t(b * (T + 1))]);
        std::copy_n(&windows[size_t(b * (T + 1))], T, &inputs[size_t(b * T)]);
      }
      ForwardResult fr = teacher->forward(inputs, B, T, /*want_hidden=*/true);
      RZ_ASSERT(int64_t(fr.hidden.size()) == L + 1);
      double nll = 0;
      int64_t targets = 0;
      for (int64_t b = 0; b < B; ++b) {
        std::vector<const float*> taps(size_t(L + 1));
        for (int64_t l = 0; l <= L; ++l) taps[size_t(l)] = fr.hidden[size_t(l)].value().data() + b * T * C;
        const float* logits = fr.logits.value().data() + b * T * V;
        const uint8_t* mask = &masks[size_t(b * (T + 1))];
        const SequenceView rec = writer.add_sequence(&windows[size_t(b * (T + 1))], mask, taps, logits);
        for (int64_t t = 0; t < T; ++t) {  // teacher NLL of the targets (progress line), from the record
          if (!mask[t + 1]) continue;
          ++targets;
          nll -= double(rec.target_logp[t]);
        }
      }
      first += B;
      written += B;
      if (progress_out) progress.update(done_before + written, targets ? nll / double(targets) : 0.0, double(B * T), "teacher nll");
    }
    return true;
  };

  if (ranks == 1) {  // one process: sequential, resumes after the last complete shard
    ProgressLine progress(total, 10, progress_out ? progress_out : stderr);
    write_range(writer.next_sequence(), total, progress, res.resumed_from);
    if (progress_out) progress.finish();
    res.sequences = writer.next_sequence();
    if (res.sequences == total) {
      writer.finish();
      res.complete = true;
    }
    res.seconds = now_seconds() - t0;
    return res;
  }

  // Several ranks: shard k (sequences [k*S, k*S + S)) belongs to rank k mod N; shards already
  // complete on disk are kept, so a rerun writes only the missing ones.
  const int64_t S = info.shard_sequences, num_shards = (total + S - 1) / S;
  int64_t mine = 0;
  for (int64_t k = rank; k < num_shards; k += ranks) mine += std::min(S, total - k * S);
  ProgressLine progress(mine, 10, progress_out ? progress_out : stderr);
  int64_t kept = 0;
  bool stopped = false;
  for (int64_t k = rank; k < num_shards && !stopped; k += ranks) {
    const int64_t first = k * S, count = std::min(S, total - first);
    if (writer.shard_on_disk(k) == count) {
      kept += count;
      continue;
    }
    writer.start_shard(k);  // missing, or from a dump of another length: (re)written
    stopped = !write_range(first, first + count, progress, kept);
    if (!stopped) writer.end_shard();
  }
  if (progress_out) progress.finish();
  res.resumed_from = kept;
  dist_barrier();  // every rank's shards are on disk
  if (rank == 0 && !stopped) {
    StoreWriter all(store_dir, info);  // finds the shards of every rank
    if (all.next_sequence() == total) all.finish();
  }
  dist_barrier();  // the manifest (if any) is on disk before any rank reads the store
  res.complete = path_exists(store_manifest_path(store_dir));
  res.sequences = res.complete ? total : kept + written;
  res.seconds = now_seconds() - t0;
  return res;
}

}  // namespace razor
