#include "train/pretrain.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/log.h"
#include "core/threads.h"
#include "io/json.h"
#include "io/tokenizer.h"
#include "nn/model.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/evaluate.h"
#include "train/loop.h"
#include "train/task_eval.h"
#include "io/file_util.h"
#include "train/metrics.h"
#include "train/shards.h"

namespace razor {

static Json options_json(const PretrainOptions& o) {
  Json j = Json::object();
  j.set("command", "pretrain");
  j.set("model", o.model.to_json());
  j.set("init_from", o.init_from);
  j.set("tokenizer", o.tokenizer);
  j.set("data", o.data);
  j.set("batch", o.batch);
  j.set("seq", o.seq);
  j.set("accum", o.accum);
  j.set("steps", Json(int64_t(o.steps)));
  j.set("lr", Json(double(o.lr)));
  j.set("weight_decay", Json(double(o.weight_decay)));
  j.set("schedule", o.schedule);
  j.set("warmup", Json(double(o.warmup)));
  j.set("seed", Json(int64_t(o.seed)));
  return j;
}

void run_pretrain(const PretrainOptions& opt_in) {
  PretrainOptions opt = opt_in;
  if (opt.resume && !checkpoint_exists(opt.out + "/checkpoint"))  // before any data is prepared
    fail("--resume: no checkpoint in %s/checkpoint", opt.out.c_str());
  Tokenizer tok = Tokenizer::load(opt.tokenizer);
  if (opt.model.vocab_size == 0) opt.model.vocab_size = tok.vocab_size();
  if (opt.model.vocab_size < tok.vocab_size())
    fail("--vocab %lld is smaller than the tokenizer's %d tokens", (long long)opt.model.vocab_size, tok.vocab_size());
  if (tok.eos_id() >= 0 && opt.model.eos_token_ids.empty()) opt.model.eos_token_ids = {tok.eos_id()};
  if (opt.seq + 1 > opt.model.max_position_embeddings)
    fail("--seq %d exceeds the model's context (max_position_embeddings %lld)", opt.seq,
         (long long)opt.model.max_position_embeddings);

  PreparedData data = prepare_data(opt.data, opt.tokenizer, "data/cache", opt.records);
  TokenShard train(data.train_shard);
  std::unique_ptr<TokenShard> valid;
  if (!data.valid_shard.empty()) valid = std::make_unique<TokenShard>(data.valid_shard);
  if (!train.records() && train.size() < uint64_t(opt.seq) + 2) fail("--data %s: only %llu tokens, fewer than one sequence",
                                                 opt.data.c_str(), (unsigned long long)train.size());

  std::unique_ptr<Model> model;
  if (!opt.init_from.empty()) {
    model = Model::load(opt.init_from);
    opt.model = model->cfg;
  } else {
    model = std::make_unique<Model>(opt.model);
    model->init_random(opt.seed);
  }
  Model& m = *model;
  m.recompute = opt.recompute;
  const size_t P = size_t(m.params.numel());

  keep_step_memory();
  AdamW adam = make_optimizer(m, opt.weight_decay);
  const LrSchedule sched = make_schedule(parse_lr_schedule(opt.schedule), opt.lr, opt.steps, opt.warmup);

  make_dirs(opt.out);
  const std::string ckpt_dir = opt.out + "/checkpoint";
  Json run = options_json(opt);
  run.set("data_description", data.description);
  int64_t start = 0;
  if (opt.resume) {
    if (!checkpoint_exists(ckpt_dir)) fail("--resume: no checkpoint in %s", ckpt_dir.c_str());
    Checkpoint ck = load_checkpoint(ckpt_dir);
    // Options that shape the loss curve must be the checkpoint's (else the resumed run is not
    // the run it continues). Paths (tokenizer, data) may be spelled differently; not compared.
    // --steps may grow (a longer run continued; data/README.md), with a note: the schedule
    // then differs from the first run's.
    check_resume_keys(ck.meta.config, run, ck.loaded_from,
                      {"model", "batch", "seq", "accum", "lr", "weight_decay", "schedule", "warmup", "seed"});
    const Json* ck_steps = ck.meta.config.find("steps");
    if (ck_steps && ck_steps->dump() != run.find("steps")->dump())
      log_note("razor pretrain: note: --steps %lld, the checkpoint's run had %s: the LR schedule changes\n",
               (long long)opt.steps, ck_steps->dump().c_str());
    if (ck.params.size() != P)
      fail("--resume: %s holds %zu parameters, this model has %zu (different --config?)", ck.loaded_from.c_str(),
           ck.params.size(), P);
    start = restore_state(ck, m, adam);
    log_note("razor pretrain: resumed from %s at step %lld\n", ck.loaded_from.c_str(), (long long)start);
  }
  write_file_atomic(opt.out + "/run.json", run.dump(2) + "\n");

  BatchSampler sampler(train, opt.batch, opt.seq, opt.seed);
  StepReport report(opt.out, {"step", "loss", "lr", "grad_norm", "tokens_per_s", "val_ppl"}, opt.resume, start,
                    opt.steps, /*progress=*/true, 2);
  const int B = opt.batch, T = opt.seq;
  std::vector<int32_t> window(size_t(B * (T + 1))), ids(size_t(B * T)), targets(size_t(B * T));
  std::vector<uint8_t> mask(window.size());  // 0: padding or a prompt token (records, chat)
  log_note("razor pretrain: %lld parameters, %s, %llu training tokens, %d threads\n",
           (long long)m.num_params(), data.description.c_str(), (unsigned long long)train.size(), num_threads());

  for (int64_t step = start; step < opt.steps; ++step) {
    double t0 = now_seconds();
    m.zero_grad();
    double loss_sum = 0;
    for (int a = 0; a < opt.accum; ++a) {
      sampler.sample(step * opt.accum + a, window.data(), mask.data());
      for (int b = 0; b < B; ++b)
        for (int t = 0; t < T; ++t) {
          ids[size_t(b * T + t)] = window[size_t(b * (T + 1) + t)];
          targets[size_t(b * T + t)] = mask[size_t(b * (T + 1) + t + 1)] ? window[size_t(b * (T + 1) + t + 1)] : -1;
        }
      Var logits = m.forward(ids, B, T).logits;
      Var loss = cross_entropy(logits, targets);
      loss_sum += loss.item();
      Var scaled = opt.accum > 1 ? scale(loss, 1.0f / float(opt.accum)) : loss;
      backward(scaled);
    }
    float lr = sched.lr_at(step);
    float gnorm = adam.step(m.params.data(), m.grads.data(), lr);
    double loss = loss_sum / opt.accum;
    if (!std::isfinite(loss)) fail("pretrain: loss became %g at step %lld (lower --lr?)", loss, (long long)step);
    double dt = now_seconds() - t0;
    double tps = double(B) * T * opt.accum / dt;
    double val = NAN;
    if (valid && cadence_due(opt.eval_every, step + 1, opt.steps))
      val = eval_perplexity(m, *valid, T, opt.eval_windows).ppl;
    report.step({double(step + 1), loss, lr, gnorm, tps, val}, step + 1, loss, double(B) * T * opt.accum, val);
    if (cadence_due(opt.ckpt_every, step + 1, opt.steps)) save_train_state(ckpt_dir, step + 1, run, m, adam);
  }
  report.finish(/*chart=*/true);

  const std::string model_dir = opt.out + "/model";
  m.save(model_dir, opt.bf16);
  write_file_atomic(model_dir + "/tokenizer.json", read_file(opt.tokenizer));
  if (valid) {
    PplResult pr = eval_perplexity(m, *valid, T, 0);
    std::printf("validation perplexity %.3f over %lld tokens\n", pr.ppl, (long long)pr.tokens);
  }
  if (opt.task_items > 0)
    for (const TaskResult& r : evaluate_builtin_suite(*make_task_model(m, tok), TaskSuiteConfig(), opt.task_items,
                                                      suite_heldout_text()))
      std::printf("task %-15s %s\n", r.name.c_str(), format_task_result(r).c_str());
  std::printf("model written to %s\n", model_dir.c_str());
}

}  // namespace razor
