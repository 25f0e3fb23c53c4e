// Tests for the distributed layer (core/dist.h) as the teacher dump and QAD use it.
// In a plain run (one process) the suite plays the ranks of a parallel teacher dump one
// after another. Under `mpirun -np 2` (tests/test_mpi.sh, `make MPI=1 test-mpi`) it also
// runs a real 2-rank parallel dump and data-parallel QAD, and holds their store and loss
// curve equal to one process's; those cases need RAZOR_MPI_DIR, a directory every rank sees.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/checksum.h"
#include "core/dist.h"
#include "core/rng.h"
#include "distill/store.h"
#include "train/teacher_dump.h"
#include "model_test_util.h"
#include "nn/model.h"
#include "qad_test_util.h"
#include "train/checkpoint.h"
#include "train/qad.h"
#include "train/shards.h"

using namespace razor;
namespace fs = std::filesystem;

namespace {

constexpr int kT = 16;

// A tiny random teacher (tied qwen3, V=37) and a token shard, written into `dir`.
void make_fixture(const std::string& dir) {
  fs::create_directories(dir);
  Model m(tiny_config(true));
  m.init_random(7, 0.3f);
  m.save(dir + "/teacher");
  Rng rng(99);
  std::vector<int32_t> ids;
  for (int i = 0; i < 400; ++i) ids.push_back(int32_t(rng.below(37)));
  write_token_shard(dir + "/train.tok", ids, {}, 37);
}

TeacherDumpOptions dump_opts() {
  TeacherDumpOptions o;
  o.seq_len = kT;
  o.top_k = 8;
  o.max_sequences = 11;  // shards of 3: 3 + 3 + 3 + 2
  o.batch = 2;
  o.shard_sequences = 3;
  o.progress = nullptr;
  return o;
}

QadConfig qad_config(const std::string& dir, const std::string& out, const std::string& store) {
  QadConfig c;
  c.teacher_dir = dir + "/teacher";
  c.data = dir + "/train.tok";
  c.cache_dir = dir + "/cache";
  c.store = store;
  c.out = out;
  set_short_qad_run(c, kT);
  c.accum = 4;  // global batch 8 sequences: 4 micro-batches, 2 per rank with N = 2
  // Constant, as when the tolerance below was set: with the cosine default the 2-rank and
  // 1-process runs (which add micro-batch gradients in another order) differed by 2-3e-4 in
  // step 6's loss on one machine, one latent weight on the other side of a rounding
  // threshold. This test is about data parallelism, not the schedule.
  c.schedule = LrScheduleKind::Constant;
  c.dump = dump_opts();
  c.threads = 1;
  return c;
}

void check_same_store(const std::string& a, const std::string& b) {
  StoreReader ra(a), rb(b);
  REQUIRE(ra.num_sequences() == rb.num_sequences());
  const int64_t bytes = RecordLayout::make(ra.info()).bytes;
  for (int64_t i = 0; i < ra.num_sequences(); ++i)
    CHECK_MESSAGE(std::memcmp(ra.sequence(i).ids, rb.sequence(i).ids, size_t(bytes)) == 0, "sequence ", i);
}

// Loss curves equal up to float summation order (a different order of adding micro-batch
// gradients changes the last bits; 6 AdamW steps keep that far below 1e-4).
void check_same_curve(const QadSummary& a, const QadSummary& b, size_t first = 0) {
  REQUIRE(a.log.size() == b.log.size() + first);
  for (size_t i = 0; i < b.log.size(); ++i) {
    const QadStepLog &x = a.log[i + first], &y = b.log[i];
    CHECK(x.step == y.step);
    CHECK_MESSAGE(x.loss == doctest::Approx(y.loss).epsilon(1e-4), "step ", x.step);
    CHECK_MESSAGE(x.ce == doctest::Approx(y.ce).epsilon(1e-4), "step ", x.step);
    CHECK_MESSAGE(x.logit == doctest::Approx(y.logit).epsilon(1e-4), "step ", x.step);
    CHECK_MESSAGE(x.feature == doctest::Approx(y.feature).epsilon(1e-4), "step ", x.step);
    CHECK_MESSAGE(x.grad_norm == doctest::Approx(y.grad_norm).epsilon(1e-4), "step ", x.step);
    CHECK(x.layers == y.layers);
  }
}

}  // namespace

TEST_SUITE("mpi") {
  TEST_CASE("dist: one process is rank 0 of 1 and collectives keep the data") {
    if (dist_size() != 1) return;
    CHECK(dist_rank() == 0);
    float x[3] = {1, 2, 3};
    dist_allreduce_sum(x, 3);
    CHECK(x[2] == 3.0f);
    double d = 5;
    dist_broadcast(&d, sizeof d, 0);
    CHECK(d == 5);
    dist_barrier();
  }

  TEST_CASE("teacher dump: ranks played in turn write disjoint shards; one manifest; rerun fills only gaps") {
    if (dist_size() != 1) return;  // needs the serial (no-op) barriers
    TempDir tmp;
    make_fixture(tmp.path);
    const std::string teacher = tmp.path + "/teacher", seq = tmp.path + "/seq", par = tmp.path + "/par";
    TokenShard tokens(tmp.path + "/train.tok");
    REQUIRE(dump_teacher_store(teacher, tokens, seq, dump_opts()).complete);
    TeacherDumpOptions o = dump_opts();
    o.ranks = 2;
    o.rank = 1;  // shards 1 and 3; "killed" inside shard 3
    o.stop_after = 4;
    TeacherDumpResult r1 = dump_teacher_store(teacher, tokens, par, o);
    CHECK_FALSE(r1.complete);
    CHECK(fs::exists(par + "/shard-00001.bin"));
    CHECK(fs::exists(par + "/shard-00003.bin.tmp"));
    CHECK_FALSE(fs::exists(par + "/manifest.json"));
    o.stop_after = -1;
    o.rank = 0;  // shards 0 and 2; shard 3 is still missing: no manifest
    TeacherDumpResult r0 = dump_teacher_store(teacher, tokens, par, o);
    CHECK_FALSE(r0.complete);
    CHECK_FALSE(fs::exists(par + "/manifest.json"));
    CHECK_FALSE(fs::exists(par + "/shard-00003.bin.tmp"));  // the new writer dropped the leftover
    // Rerun: rank 1 keeps shard 1 and writes only shard 3; rank 0 keeps 0 and 2 and writes the manifest.
    auto mtime = fs::last_write_time(par + "/shard-00001.bin");
    o.rank = 1;
    TeacherDumpResult r1b = dump_teacher_store(teacher, tokens, par, o);
    CHECK(r1b.resumed_from == 3);
    CHECK(fs::last_write_time(par + "/shard-00001.bin") == mtime);
    o.rank = 0;
    TeacherDumpResult r0b = dump_teacher_store(teacher, tokens, par, o);
    CHECK(r0b.resumed_from == 6);
    CHECK(r0b.complete);
    CHECK(r0b.sequences == 11);
    check_same_store(seq, par);
    // A finished store is complete for every rank.
    o.rank = 1;
    CHECK(dump_teacher_store(teacher, tokens, par, o).complete);
    // A one-process writer resumes a store with gaps after its prefix (shards 0 and 2 only).
    const std::string gap = tmp.path + "/gap";
    fs::create_directories(gap);
    for (const char* f : {"/shard-00000.bin", "/shard-00002.bin"}) fs::copy_file(par + f, gap + f);
    TeacherDumpResult g = dump_teacher_store(teacher, tokens, gap, dump_opts());
    CHECK(g.resumed_from == 3);
    CHECK(g.complete);
    check_same_store(seq, gap);
  }

  TEST_CASE("qad: data parallel over 2 ranks gives the one-process loss curve; resume with another N") {
    if (dist_size() == 1) {
      MESSAGE("one process: run under mpirun -np 2 (tests/test_mpi.sh) for the data-parallel checks");
      return;
    }
    const char* env = std::getenv("RAZOR_MPI_DIR");
    REQUIRE_MESSAGE(env, "set RAZOR_MPI_DIR to a directory every rank sees");
    const std::string dir = env;
    const bool lead = dist_rank() == 0;
    if (lead) {
      fs::remove_all(dir);
      make_fixture(dir);
    }
    dist_barrier();
    // Teacher store written by every rank (whole shards each) vs one process.
    TeacherDumpResult pr = dump_teacher_store(dir + "/teacher", TokenShard(dir + "/train.tok"), dir + "/store-par",
                                              dump_opts());
    CHECK(pr.complete);
    if (lead) {
      TeacherDumpOptions one = dump_opts();
      one.ranks = 1;
      dump_teacher_store(dir + "/teacher", TokenShard(dir + "/train.tok"), dir + "/store-one", one);
      check_same_store(dir + "/store-one", dir + "/store-par");
    }
    dist_barrier();
    const std::string store = dir + "/store-par";
    // Reference: rank 0 alone.
    QadSummary ref;
    if (lead) {
      QadConfig c = qad_config(dir, dir + "/one", store);
      c.data_parallel = false;
      ref = run_qad(c);
    }
    dist_barrier();
    QadSummary par = run_qad(qad_config(dir, dir + "/par", store));
    CHECK(par.ranks == dist_size());
    if (lead) check_same_curve(ref, par);
    // Interrupted 2-rank run (checkpoint at step 3), resumed by one process.
    QadConfig k = qad_config(dir, dir + "/resume", store);
    k.stop_after = 4;
    run_qad(k);
    dist_barrier();
    if (lead) {
      k.stop_after = -1;
      k.resume = true;
      k.data_parallel = false;
      QadSummary rs = run_qad(k);
      check_same_curve(ref, rs, 3);
      Checkpoint a = load_checkpoint(dir + "/one/checkpoint"), b = load_checkpoint(dir + "/resume/checkpoint");
      REQUIRE(a.params.size() == b.params.size());
      double worst = 0;
      for (size_t i = 0; i < a.params.size(); ++i)
        worst = std::max(worst, double(std::fabs(a.params[i] - b.params[i])));
      CHECK(worst < 1e-4);
    }
    dist_barrier();
    // A one-process interrupted run resumed by 2 ranks.
    QadConfig u = qad_config(dir, dir + "/resume2", store);
    if (lead) {
      u.data_parallel = false;
      u.stop_after = 3;
      run_qad(u);
    }
    dist_barrier();
    u = qad_config(dir, dir + "/resume2", store);
    u.resume = true;
    QadSummary r2 = run_qad(u);
    if (lead) check_same_curve(ref, r2, 3);
    dist_barrier();
  }
}
