// Running the teacher once over the training tokens and writing the teacher store
// (`razor teacher`, and `razor train` when its store is missing).
//
// Sequence i of the store is data_sequence(shard, T, i): the fixed window of tokens
// [i*T, i*T + T + 1) (the same windows as eval_window), or on a records shard (chat data,
// --records) record i padded / truncated to T+1 tokens; so a dump is a pure function of
// (teacher, shard, settings) and an interrupted dump resumes at StoreWriter::next_sequence().
// The store's mask is the shard's: all ones for plain text, 0 on padding and (chat) on every
// token that is not an assistant token.
// Under mpirun each rank writes whole shards (shard k to rank k mod N) into the same store
// directory, which must then be on a file system every rank sees.
// The teacher runs without gradients (Model(trainable=false)), a few sequences per forward;
// StoreWriter computes top-K / entropy / cosines from the raw outputs.
// Deliberately not here: the store format (distill/store.h), tokenizing text (the caller
// hands a TokenShard), the student.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include "distill/store.h"

namespace razor {

class TokenShard;

struct TeacherDumpOptions {
  int64_t seq_len = 256;                      // T
  LogitStorage logits = LogitStorage::TopK;
  int64_t top_k = 64;                         // K (top-K stores)
  HiddenDtype hidden = HiddenDtype::BF16;
  TapStorage taps = TapStorage::Auto;         // --taps: every feature tap or AFD's per-sequence selection
  int afd_k = 3;                              // taps kept per sequence by a selected-tap store (min(k, L))
  LogpDtype logp_dtype = LogpDtype::F32;
  int64_t max_sequences = 0;                  // 0: every full window of the shard
  int64_t batch = 4;                          // sequences per teacher forward
  int64_t shard_sequences = 64;               // sequences per store shard file
  int64_t stop_after = -1;                    // test hook: stop (without finishing) after this many new sequences
  // Parallel dump (core/dist.h): rank r of N writes shards r, r+N, ... of the same store and
  // rank 0 writes the manifest once every rank is done. ranks = 0: the MPI job's own rank and
  // size (0 of 1 without MPI). Tests set them to play the ranks one after another.
  int rank = 0, ranks = 0;
  FILE* progress = stderr;                    // nullptr: silent
};

struct TeacherDumpResult {
  int64_t sequences = 0;     // sequences in the store now
  int64_t resumed_from = 0;  // sequences that were already there
  bool complete = false;     // manifest written
  double seconds = 0;
};

// Identity of a teacher checkpoint: hash64 of model.safetensors (or of every shard listed
// in model.safetensors.index.json, in order) combined with hash64 of config.json.
uint64_t teacher_checkpoint_hash(const std::string& teacher_dir);
// hash64_file(<dir>/tokenizer.json), or 0 when the directory has no tokenizer.json.
uint64_t tokenizer_file_hash(const std::string& teacher_dir);

// Number of store sequences the shard gives for the options (full windows, capped).
int64_t teacher_dump_sequences(const TokenShard& data, const TeacherDumpOptions& opt);

// Writes (or resumes, or finds complete) the store in store_dir. Errors: a shard whose
// vocabulary exceeds the teacher's, fewer than one window of tokens, a store with other
// settings (StoreWriter's message).
TeacherDumpResult dump_teacher_store(const std::string& teacher_dir, const TokenShard& data,
                                     const std::string& store_dir, const TeacherDumpOptions& opt);

}  // namespace razor
