// The short QAD run the training suites share (tests/test_qad.cpp, tests/test_mpi.cpp).
#pragma once
#include "train/qad.h"

namespace razor {

// A run small enough for a test: G 8, micro-batches of 2 sequences of `seq` tokens, 6 steps
// at lr 1e-2, a checkpoint every 3 steps, no evaluation, no tasks, no final outputs, silent.
inline void set_short_qad_run(QadConfig& c, int seq) {
  c.group = 8;
  c.batch = 2;
  c.seq = seq;
  c.lr = 1e-2f;
  c.steps = 6;
  c.eval_every = 0;
  c.ckpt_every = 3;
  c.final_outputs = false;
  c.task_items = 0;
  c.log = nullptr;
  c.progress = false;
}

}  // namespace razor
