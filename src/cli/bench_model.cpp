// `razor bench` (no kind): whole-model prefill and decode throughput of the packed engine, with
// storage, peak memory and the fraction of the DRAM roofline decode reaches (the paper's
// Table 15 columns). With no model: the newest runs/*/student.razor; with --shape: a synthetic
// model built directly in packed form from random codes (no fp32 weights are materialised).
#include <thread>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/bench_util.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "core/threads.h"
#include "infer/engine.h"
#include "infer/generate.h"
#include "infer/pack.h"
#include "io/json.h"
#include "kernels/qgemm.h"

namespace razor {

namespace {

ModelConfig shape_config(const std::string& s) {
  ModelConfig c;
  c.model_type = "qwen3";
  c.tie_word_embeddings = true;
  c.num_hidden_layers = 28;
  c.num_attention_heads = 16;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.rope_theta = 1000000.0;
  c.max_position_embeddings = 40960;
  c.vocab_size = 151936;
  if (s == "qwen3-0.6b") {
    c.hidden_size = 1024, c.intermediate_size = 3072;
  } else if (s == "qwen3-1.7b") {
    c.hidden_size = 2048, c.intermediate_size = 6144;
  } else if (s == "tiny") {
    c.vocab_size = 4096, c.hidden_size = 256, c.num_hidden_layers = 6, c.num_attention_heads = 4;
    c.num_key_value_heads = 2, c.head_dim = 64, c.intermediate_size = 768, c.max_position_embeddings = 2048;
  } else {
    fail("--shape: \"%s\" is not qwen3-0.6b, qwen3-1.7b or tiny", s.c_str());
  }
  c.validate("--shape");
  return c;
}

// A PackedMatrix of random valid codes (every byte a legal encoding of its row kind) and
// random fp16 scales, built without any fp32 or int8 copy of the weights.
PackedMatrix random_packed(const PackedDesc& d, Rng& rng) {
  check_packed_desc(d, "bench");
  PackedMatrix m;
  m.desc = d;
  const int64_t last = d.d_out - 1;
  m.codes = AlignedBytes(size_t(m.row_offset(last) + row_code_bytes(m.row_kind(last), d.G, d.d_in)));
  m.scales = AlignedBytes(size_t(d.d_out * (d.d_in / d.G) * 2));
  // Tables of legal bytes: ternary2 = four fields in {0,1,2}; int4 = two nibbles in 1..15;
  // ternary5 = ceil(v * 256 / 243), v < 243.
  std::vector<uint8_t> t2, i4, t5;
  for (int b = 0; b < 256; ++b) {
    if ((b & 3) < 3 && ((b >> 2) & 3) < 3 && ((b >> 4) & 3) < 3 && ((b >> 6) & 3) < 3) t2.push_back(uint8_t(b));
    if ((b & 15) >= 1 && (b >> 4) >= 1) i4.push_back(uint8_t(b));
  }
  for (int v = 0; v < 243; ++v) t5.push_back(uint8_t((v * 256 + 242) / 243));
  for (int64_t i = 0; i < d.d_out; ++i) {
    const RowKind k = m.row_kind(i);
    const std::vector<uint8_t>& tab = k == RowKind::Int4 ? i4 : k == RowKind::Ternary2 ? t2 : t5;
    uint8_t* row = m.codes.data() + m.row_offset(i);
    const int64_t nb = row_code_bytes(k, d.G, d.d_in);
    for (int64_t j = 0; j < nb; j += 8) {
      uint64_t r = rng.next_u64();
      for (int64_t q = j; q < std::min(nb, j + 8); ++q, r >>= 8) row[q] = tab[size_t(r & 255) % tab.size()];
    }
  }
  uint16_t* sc = reinterpret_cast<uint16_t*>(m.scales.data());
  for (int64_t i = 0; i < d.d_out * (d.d_in / d.G); ++i) sc[i] = f32_to_f16(0.002f + 0.01f * rng.uniform());
  return m;
}

PackedModel synthetic_model(const ModelConfig& c, const PackOptions& opt) {
  PackedModel pm;
  pm.cfg = c;
  pm.opt = opt;
  Rng rng(1234);
  const WeightLayout lin = opt.plan.linear_layout(), emb = opt.plan.embedding_layout();
  auto mk = [&](const WeightLayout& l, int64_t o, int64_t i, const char* what) {
    return random_packed(packed_desc_for(l, o, i, opt.ternary5, what), rng);
  };
  const int64_t C = c.hidden_size, HD = c.num_attention_heads * c.head_dim, KD = c.num_key_value_heads * c.head_dim,
                F = c.intermediate_size;
  pm.embed = mk(emb, c.vocab_size, C, "embed");
  if (!c.tie_word_embeddings) pm.lm_head = mk(emb, c.vocab_size, C, "lm_head");
  pm.layers.resize(size_t(c.num_hidden_layers));
  for (PackedLayer& ly : pm.layers) {
    ly.attn_norm.assign(size_t(C), 1.0f);
    ly.mlp_norm.assign(size_t(C), 1.0f);
    ly.q_norm.assign(size_t(c.head_dim), 1.0f);
    ly.k_norm.assign(size_t(c.head_dim), 1.0f);
    ly.q = mk(lin, HD, C, "q_proj");
    ly.k = mk(lin, KD, C, "k_proj");
    ly.v = mk(lin, KD, C, "v_proj");
    ly.o = mk(lin, C, HD, "o_proj");
    ly.gate = mk(lin, F, C, "gate_proj");
    ly.up = mk(lin, F, C, "up_proj");
    ly.down = mk(lin, C, F, "down_proj");
  }
  pm.final_norm.assign(size_t(C), 1.0f);
  return pm;
}

// VmHWM (peak resident set) in bytes, from /proc/self/status; 0 when unavailable.
int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return int64_t(std::atoll(line.c_str() + 6)) * 1024;
  return 0;
}

std::vector<int64_t> parse_list(const std::string& s, const char* opt) {
  std::vector<int64_t> v;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string t = s.substr(i, j - i);
    char* end = nullptr;
    const long long x = std::strtoll(t.c_str(), &end, 10);
    RZ_CHECK(!t.empty() && end && *end == 0 && x >= 1 && x <= 1000000, "%s: \"%s\" is not a list of positive counts",
             opt, s.c_str());
    v.push_back(x);
    i = j + 1;
  }
  return v;
}

}  // namespace

int bench_model(int argc, char** argv) {
  ArgParser ap("razor bench",
               "Whole-model throughput of the packed engine: storage, peak memory, prefill tokens/s, decode tokens/s "
               "from an empty context, and decode's fraction of the measured DRAM read bandwidth (weight bytes per "
               "token x tokens/s / bandwidth). Kernel benchmarks: `razor bench gemm|gemv|qgemm --help`.");
  ap.option("-m,--model", "", "packed model (.razor); default: newest runs/*/student.razor, else --shape");
  ap.option("--shape", "", "synthetic random-weight model: qwen3-0.6b, qwen3-1.7b or tiny");
  ap.option("--bits", "1.88", "synthetic model precision: 4, 2.79, 1.88, 1.58 (or a rho)");
  ap.option("--group", "64", "synthetic model group size G (64, 128, 256)");
  ap.option("--ternary", "2bit", "synthetic model all-ternary storage: 2bit or 5trit");
  ap.option("--threads", "", "threads (default: OMP_NUM_THREADS or all cores; at most the cores available)");
  ap.option("--prompt", "512", "prefill length in tokens (0: skip)");
  ap.option("--gen", "128,512", "decode lengths (comma list), each from an empty context");
  ap.option("--repeat", "1", "repetitions of each measurement (median reported)");
  ap.option("--bw-mib", "512", "buffer for the memory read-bandwidth probe in MiB (0: skip the roofline)");
  ap.flag("--json", "print one JSON object instead of the table");
  ap.option("--save", "", "with --shape: write the synthetic model to this .razor file and exit (e.g. to export it "
                          "with `razor export --gguf` and run identical weights in llama.cpp)");
  ap.option("--tokenizer", "", "with --save: tokenizer.json to store in the file (ids must fit the shape's vocab)");
  if (!ap.parse(argc, argv, 1)) return 0;
  apply_threads_option(ap, 1, 1024);
  const int64_t prompt = ap.i64_in("--prompt", 0, 1 << 20);
  const std::vector<int64_t> gens = parse_list(ap.str("--gen"), "--gen");
  const int repeat = int(ap.i64_in("--repeat", 1, 1000));
  const int64_t bw_mib = ap.i64_in("--bw-mib", 0, 1 << 16);

  PackedModel pm;
  std::string source;
  int64_t storage = 0;
  std::string path = ap.str("--model");
  if (path.empty() && !ap.given("--shape")) path = latest_student();
  if (!path.empty()) {
    RZ_CHECK(!ap.given("--shape"), "--model and --shape: give one of them");
    pm = PackedModel::load(path);
    source = path;
    storage = int64_t(pm.file_bytes);
  } else {
    RZ_CHECK(ap.given("--shape"), "--model: none given and no runs/*/student.razor found; pass -m FILE or --shape "
                                  "qwen3-0.6b|qwen3-1.7b|tiny");
    PackOptions opt;
    opt.plan.rho = parse_precision(ap.str("--bits"), "--bits");
    opt.plan.group = int(ap.i64("--group"));
    const std::string tern = ap.str("--ternary");
    RZ_CHECK(tern == "2bit" || tern == "5trit", "--ternary: \"%s\" is not 2bit or 5trit", tern.c_str());
    opt.ternary5 = tern == "5trit";
    pm = synthetic_model(shape_config(ap.str("--shape")), opt);
    source = "synthetic " + ap.str("--shape") + " (random codes)";
    storage = pm.packed_bytes();
    if (ap.given("--save")) {
      if (ap.given("--tokenizer")) pm.tokenizer_json = read_file(ap.str("--tokenizer"));
      pm.save(ap.str("--save"));
      std::printf("razor bench: saved %s, %s (seed 1234) to %s\n", source.c_str(), pm.opt.plan.str().c_str(),
                  ap.str("--save").c_str());
      return 0;
    }
  }
  RZ_CHECK(!ap.given("--save") && !ap.given("--tokenizer"), "--save/--tokenizer: only with --shape (a synthetic model)");
  pm.prepare_for_engine();  // as generate does: the weights held once, in the kernels' form
  int64_t max_gen = 0;
  for (int64_t g : gens) max_gen = std::max(max_gen, g);
  const int64_t ctx = std::max(prompt, max_gen);
  RZ_CHECK(ctx <= pm.cfg.max_position_embeddings, "--prompt/--gen: %lld tokens exceed max_position_embeddings %lld",
           (long long)ctx, (long long)pm.cfg.max_position_embeddings);
  Engine e(pm, ctx, std::max<int64_t>(1, std::min<int64_t>(prompt, 512)));
  Rng rng(7);
  std::vector<int32_t> ids(static_cast<size_t>(ctx));
  for (int32_t& id : ids) id = int32_t(rng.below(uint64_t(pm.cfg.vocab_size)));

  double prefill_tps = 0;
  if (prompt > 0) {
    std::vector<double> t;
    for (int r = 0; r < repeat; ++r) {
      e.reset();
      const double t0 = now_seconds();
      e.forward(ids.data(), prompt);
      t.push_back(now_seconds() - t0);
    }
    prefill_tps = double(prompt) / median(t);
  }
  std::vector<double> decode_tps;
  for (int64_t g : gens) {
    std::vector<double> t;
    for (int r = 0; r < repeat; ++r) {
      e.reset();
      const double t0 = now_seconds();
      for (int64_t i = 0; i < g; ++i) e.decode(ids[size_t(i)]);
      t.push_back(now_seconds() - t0);
    }
    decode_tps.push_back(double(g) / median(t));
  }
  const int64_t peak = peak_rss_bytes();  // before the bandwidth probe's buffer
  const double bw = bw_mib > 0 ? read_bandwidth(size_t(bw_mib) << 20) : 0.0;
  const double bpt = double(pm.decode_bytes_per_token());
  const unsigned cores = std::thread::hardware_concurrency();

  if (ap.on("--json")) {
    Json j = Json::object();
    j.set("model", source);
    j.set("layout", pm.opt.plan.str());
    j.set("threads", int64_t(num_threads()));
    j.set("decode_threads", int64_t(e.decode_threads()));
    j.set("cores", int64_t(cores));
    j.set("tier", qtier_name(qtier_active()));
    j.set("storage_bytes", storage);
    j.set("peak_rss_bytes", peak);
    j.set("kv_cache_bytes", e.kv_bytes());
    j.set("decode_weight_bytes_per_token", int64_t(bpt));
    j.set("prefill_tokens", prompt);
    j.set("prefill_tok_s", prefill_tps);
    Json d = Json::array();
    for (size_t i = 0; i < gens.size(); ++i) {
      Json x = Json::object();
      x.set("tokens", gens[i]);
      x.set("tok_s", decode_tps[i]);
      if (bw > 0) x.set("roofline_fraction", bpt * decode_tps[i] / bw);
      d.push_back(x);
    }
    j.set("decode", d);
    j.set("read_bandwidth_bytes_s", bw);
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("razor bench: %s, %s, %d threads (%u cores%s; decode on %d), qgemm tier %s\n", source.c_str(),
              pm.opt.plan.str().c_str(), num_threads(), cores,
              unsigned(num_threads()) > cores ? ", oversubscribed" : "", e.decode_threads(), qtier_name(qtier_active()));
  std::printf("%-12s %-12s %-14s", "storage MiB", "peak MiB", "prefill tok/s");
  for (int64_t g : gens) std::printf(" %-12s", ("decode" + std::to_string(g)).c_str());
  if (bw > 0)
    for (int64_t g : gens) std::printf(" %-10s", ("roof" + std::to_string(g)).c_str());
  std::printf("\n%-12.1f %-12.1f %-14.1f", double(storage) / 1048576.0, double(peak) / 1048576.0, prefill_tps);
  for (double t : decode_tps) std::printf(" %-12.1f", t);
  if (bw > 0)
    for (double t : decode_tps) std::printf(" %-10.1f", 100.0 * bpt * t / bw);
  std::printf("\n  prefill %lld tokens; decode from an empty context; weight bytes per decoded token %.2f MiB; "
              "KV cache %.1f MiB; read bandwidth %.2f GB/s (%lld MiB probe); roof = %% of that bandwidth\n",
              (long long)prompt, bpt / 1048576.0, double(e.kv_bytes()) / 1048576.0, bw * 1e-9, (long long)bw_mib);
  return 0;
}

}  // namespace razor
