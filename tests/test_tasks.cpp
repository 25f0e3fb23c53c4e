// Tests for the built-in task suite (train/tasks.h) and the task evaluator (train/task_eval.h):
// golden items of every generator, determinism, no held-out problem in any training document,
// the training mix, log-likelihoods and acc / acc_norm computed by hand on a zero model
// (checkpoint and packed), generation stopping rules, and one case per malformed JSONL defect.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "core/error.h"
#include "gguf_test_util.h"
#include "infer/pack.h"
#include "io/tokenizer.h"
#include "model_test_util.h"
#include "nn/model.h"
#include "train/data.h"
#include "train/shards.h"
#include "train/task_eval.h"
#include "train/tasks.h"
#include "test_util.h"

using namespace razor;

namespace {

std::string join(const std::vector<std::string>& docs) {
  std::string s;
  for (const std::string& d : docs) s += d + "\n\n";
  return s;
}

// Held-out corpus text for next-sentence items: three documents of lines and sentences.
const char* const kHeldout =
    "The river ran past the old mill at dawn. A heron stood in the shallows and waited.\n"
    "Nobody in the village could remember when the mill had last turned.\n"
    "The miller's children played on its steps every summer evening.\n\n"
    "Rain came late that year, and the wheat stood thin in the fields.\n"
    "The farmers met in the square to talk about the price of bread.\n"
    "One of them said the winter would be long and hard for everyone.\n\n"
    "A ship was seen off the point before the storm. It carried no lights at all.\n"
    "By morning the harbour master had written three letters to the town.\n";

// A TaskModel whose log-likelihood is a per-character table and whose generation is canned:
// log p('a') = log 0.1, log p('b') = log 0.5, anything else log 1 (the delimiter costs nothing).
struct TableModel : TaskModel {
  std::string canned;
  double loglikelihood(const std::string&, const std::string& cont) override {
    double s = 0;
    for (char c : cont) s += c == 'a' ? std::log(0.1) : c == 'b' ? std::log(0.5) : 0.0;
    return s;
  }
  std::string generate(const TaskItem&) override { return canned; }
};

// Multiple choice between "a" and "bbbb" (gold: the second) after "ctx", for TableModel.
TaskItem choice_a_or_bbbb() {
  TaskItem it;
  it.kind = TaskKind::MultipleChoice;
  it.context = "ctx";
  it.choices = {"a", "bbbb"};
  it.gold = 1;
  return it;
}

// The person a held-out question asks about: its first two capitalised words after "Q: What".
std::string person_of(const std::string& q) {
  size_t i = 4;
  while (i < q.size() && !(q[i - 1] == ' ' && q[i] >= 'A' && q[i] <= 'Z')) ++i;
  size_t e = q.find(' ', q.find(' ', i) + 1);
  std::string n = q.substr(i, e - i);
  if (!n.empty() && n.back() == '?') n.pop_back();
  return n;
}

}  // namespace

TEST_SUITE("tasks") {
  TEST_CASE("generators: golden items, number convention") {
    CHECK(lsd_digits(936) == "639");
    CHECK(lsd_digits(0) == "0");
    CHECK(lsd_digits(1200) == "0021");
    TaskSuiteConfig cfg;  // seed 1234, 300 people
    std::vector<TaskItem> a = task_heldout_items("arith", cfg, 3);
    REQUIRE(a.size() == 3);
    CHECK(a[0].prompt == "Q: 174+17= A:");  // 471 + 71 = 542, least-significant digit first
    CHECK(a[0].answer == "245");
    CHECK(a[2].prompt == "Q: 5867-55= A:");  // 7685 - 55 = 7630
    CHECK(a[2].answer == "0367");
    CHECK(a[0].kind == TaskKind::Generative);
    std::vector<TaskItem> w = task_heldout_items("word", cfg, 1);
    REQUIRE(w.size() == 1);
    CHECK(w[0].prompt ==
          "Question: Ella has 53 shells. She buys 8 packs with 4 shells in each. She buys 5 packs with 01 shells in "
          "each. How many shells does Ella have now?\nAnswer:");
    CHECK(w[0].answer == "711");  // 35 + 8*4 + 5*10 = 117
    CHECK(w[0].answer_after == "#### ");
    std::vector<TaskItem> k = task_heldout_items("knowledge", cfg, 1);
    REQUIRE(k.size() == 1);
    CHECK(k[0].prompt == "Q: What is the birthplace of Fairun Bakein? A:");
    CHECK(k[0].answer == "Millbrook");
    std::vector<TaskItem> km = task_heldout_items("knowledge_mc", cfg, 1);
    REQUIRE(km.size() == 1);
    CHECK(km[0].kind == TaskKind::MultipleChoice);
    CHECK(km[0].context == k[0].prompt);  // the same held-out fact, as 4-way choice
    REQUIRE(km[0].choices.size() == 4);
    CHECK(km[0].choices[size_t(km[0].gold)] == "Millbrook");
    std::vector<TaskItem> ns = task_heldout_items("nextsent_mc", cfg, 100, kHeldout);
    REQUIRE(ns.size() == 7);
    CHECK(task_item_json(ns[0]) ==
          R"({"context":"A ship was seen off the point before the storm. It carried no lights at all.","choices":["A heron )"
          R"(stood in the shallows and waited.","Nobody in the village could remember when the mill had last turned.","By )"
          R"(morning the harbour master had written three letters to the town.","The farmers met in the square to talk )"
          R"(about the price of bread."],"gold":2,"delimiter":"\n"})");
    CHECK(ns[1].context == "The river ran past the old mill at dawn.");  // inside a line: delimiter " "
    CHECK(ns[1].delimiter == " ");
    for (const TaskItem& it : ns) {
      REQUIRE(it.choices.size() == 4);
      std::set<std::string> distinct(it.choices.begin(), it.choices.end());
      CHECK(distinct.size() == 4);
      // The true next sentence follows the context in the held-out text, joined by its delimiter.
      CHECK(std::string(kHeldout).find(it.context + it.delimiter + it.choices[size_t(it.gold)]) != std::string::npos);
    }
    CHECK(task_heldout_items("nextsent_mc", cfg, 10, "too short").empty());
    CHECK(error_of([&] { task_heldout_items("chess", cfg, 1); }).find("not a built-in task") != std::string::npos);

    // Word problems are worked: every solution line is an equation that holds.
    std::vector<std::string> docs;
    word_documents(cfg, 4000, docs);
    int lines = 0;
    for (const std::string& d : docs) {
      CHECK(d.find("\n\n") == std::string::npos);  // one document: no empty line inside
      size_t p = 0;
      while ((p = d.find('\n', p)) != std::string::npos) {
        ++p;
        if (d.compare(p, 1, " ") != 0) continue;
        long long x = 0, y = 0, z = 0;
        char op = 0;
        std::string xs, ys, zs;
        size_t e = d.find('\n', p);
        std::string line = d.substr(p + 1, e - p - 1);
        size_t o = line.find_first_of("+-*"), q = line.find('=');
        REQUIRE(o != std::string::npos);
        REQUIRE(q != std::string::npos);
        xs = line.substr(0, o), ys = line.substr(o + 1, q - o - 1), zs = line.substr(q + 1);
        std::reverse(xs.begin(), xs.end()), std::reverse(ys.begin(), ys.end()), std::reverse(zs.begin(), zs.end());
        x = std::stoll(xs), y = std::stoll(ys), z = std::stoll(zs), op = line[o];
        CHECK(z == (op == '+' ? x + y : op == '-' ? x - y : x * y));
        ++lines;
      }
    }
    CHECK(lines > 20);
  }

  TEST_CASE("generators: deterministic from the seed") {
    TaskSuiteConfig a, b, c;
    c.seed = 99;
    CHECK(task_training_documents(a, 20000) == task_training_documents(b, 20000));
    CHECK(task_training_documents(a, 20000) != task_training_documents(c, 20000));
    for (const std::string& t : builtin_task_names()) {
      std::vector<TaskItem> x = task_heldout_items(t, a, 20, kHeldout), y = task_heldout_items(t, b, 20, kHeldout);
      REQUIRE(x.size() == y.size());
      for (size_t i = 0; i < x.size(); ++i) CHECK(task_item_json(x[i]) == task_item_json(y[i]));
    }
  }

  TEST_CASE("split: no held-out problem in any training document") {
    const TaskSuiteConfig cfg = default_mix_suite();  // train/data.h: 300 people, knowledge weight 4
    const std::string train = join(task_training_documents(cfg, 600000));
    // About 10% of each problem space is held out, whatever the seed.
    int held = 0;
    for (int i = 0; i < 10000; ++i) held += task_key_heldout("arith", std::to_string(i) + "+7");
    CHECK(held > 800);
    CHECK(held < 1200);
    for (const TaskItem& it : task_heldout_items("arith", cfg, 300)) CHECK(train.find(it.prompt) == std::string::npos);
    for (const TaskItem& it : task_heldout_items("word", cfg, 200)) CHECK(train.find(it.prompt) == std::string::npos);
    // Knowledge: the held-out facts are stated (the knowledge is in training), but no training
    // question asks them, in any template, and the held-out question template is never used.
    std::vector<std::string> qa_lines;
    size_t p = 0;
    while ((p = train.find("Q: ", p)) != std::string::npos) {
      size_t e = train.find('\n', p);
      qa_lines.push_back(train.substr(p, e - p));
      p = e;
    }
    REQUIRE(qa_lines.size() > 1000);
    const std::vector<TaskItem> know = task_heldout_items("knowledge", cfg, 200);
    REQUIRE(know.size() > 80);  // 300 people x 4 facts, about 10% held out (114)
    CHECK(know.size() < 160);
    for (const TaskItem& it : know) {
      CHECK(train.find(it.prompt) == std::string::npos);
      const std::string name = person_of(it.prompt);
      REQUIRE(name.size() > 5);
      CHECK(train.find(name) != std::string::npos);
      for (const std::string& l : qa_lines)
        if (l.find(name) != std::string::npos) CHECK(l.substr(l.rfind(" A: ") + 4) != it.answer);
    }
    // knowledge_facts: the same facts in the same order, each asked with a training question
    // template (so its wording is in training), yet no training document holds the question.
    const std::vector<TaskItem> facts = task_heldout_items("knowledge_facts", cfg, 200);
    REQUIRE(facts.size() == know.size());
    auto bare = [](std::string n) {  // person_of without a possessive or a question mark
      if (!n.empty() && n.back() == '?') n.pop_back();
      if (n.size() > 2 && n.compare(n.size() - 2, 2, "'s") == 0) n.resize(n.size() - 2);
      return n;
    };
    // A prompt's template: the text before and after its person's name.
    auto around_name = [&](const std::string& q) {
      const std::string name = bare(person_of(q));
      const size_t at = q.find(name);
      return std::make_pair(q.substr(0, at), q.substr(at + name.size()));
    };
    for (size_t i = 0; i < facts.size(); ++i) {
      CHECK(facts[i].answer == know[i].answer);
      CHECK(bare(person_of(facts[i].prompt)) == bare(person_of(know[i].prompt)));
      CHECK(facts[i].prompt != know[i].prompt);
      CHECK(train.find(facts[i].prompt) == std::string::npos);
      // Its template: the prompt with the name taken out appears, with another name, in training.
      const auto [before, after] = around_name(facts[i].prompt);
      bool seen = false;
      for (const std::string& l : qa_lines)
        if (l.compare(0, before.size(), before) == 0 && l.find(after) != std::string::npos) { seen = true; break; }
      CHECK(seen);
    }
    // Every one of the 12 x 4 training templates is drawn for knowledge_facts (a larger world
    // than the default's 114 held-out facts, so each template is drawn many times).
    TaskSuiteConfig big = cfg;
    big.world_people = 2000;
    std::set<std::string> templates;  // the text around the name
    for (const TaskItem& f : task_heldout_items("knowledge_facts", big, 1000)) {
      const auto [before, after] = around_name(f.prompt);
      templates.insert(before + "{N}" + after);
    }
    CHECK(templates.size() == 48);
    // Next sentence: the mixed training text holds the corpus's training documents, never the held-out text.
    const std::vector<std::string> corpus = {"In the beginning was the word.", "Another training document here."};
    const std::string mixed = join(mix_training_documents(corpus, kDefaultTaskMix, cfg));
    for (const TaskItem& it : task_heldout_items("nextsent_mc", cfg, 50, kHeldout))
      CHECK(mixed.find(it.context) == std::string::npos);
  }

  TEST_CASE("mix: corpus documents kept in order, task share by bytes") {
    TaskSuiteConfig cfg;
    cfg.world_people = 200;
    std::vector<std::string> corpus;
    size_t corpus_bytes = 0;
    for (int i = 0; i < 400; ++i) corpus.push_back("corpus document " + std::to_string(i) + std::string(200, 'x'));
    for (const std::string& d : corpus) corpus_bytes += d.size();
    CHECK(mix_training_documents(corpus, 0.0, cfg) == corpus);
    std::vector<std::string> m = mix_training_documents(corpus, 0.25, cfg);
    std::vector<std::string> kept;
    size_t task_bytes = 0;
    for (const std::string& d : m) {
      if (d.rfind("corpus document ", 0) == 0) kept.push_back(d);
      else task_bytes += d.size();
    }
    CHECK(kept == corpus);
    const double share = double(task_bytes) / double(task_bytes + corpus_bytes);
    CHECK(share > 0.23);
    CHECK(share < 0.27);
    // Interleaved: the first tenth of the documents already holds task documents.
    bool early_task = false;
    for (size_t i = 0; i < m.size() / 10; ++i) early_task |= m[i].rfind("corpus document ", 0) != 0;
    CHECK(early_task);
    CHECK(error_of([&] { mix_training_documents(corpus, 1.0, cfg); }).find("--mix") != std::string::npos);
  }

  TEST_CASE("mix: the knowledge weight scales the knowledge documents' share, and 1 is the default mix") {
    // Knowledge documents: biographies (no "Q:" / "Question:" line, a person's name in every
    // sentence) and training-template questions ("Q: Where was ..."); arithmetic lines are
    // "Q: <digits>..." and word problems start with "Question:".
    auto knowledge_share = [](const std::vector<std::string>& docs) {
      size_t k = 0, all = 0;
      for (const std::string& d : docs) {
        all += d.size();
        const bool arith = d.rfind("Q: ", 0) == 0 && d.size() > 3 && d[3] >= '0' && d[3] <= '9';
        if (!arith && d.rfind("Question:", 0) != 0) k += d.size();
      }
      return double(k) / double(all);
    };
    TaskSuiteConfig cfg;
    cfg.world_people = 50;
    const std::vector<std::string> base = task_training_documents(cfg, 200000);
    TaskSuiteConfig one = cfg;
    one.knowledge_weight = 1.0;
    CHECK(task_training_documents(one, 200000) == base);
    const double s1 = knowledge_share(base);
    CHECK(s1 > 0.33);  // 25% statements + 10% questions
    CHECK(s1 < 0.37);
    TaskSuiteConfig four = cfg;
    four.knowledge_weight = 4.0;
    const std::vector<std::string> k4 = task_training_documents(four, 200000);
    const double s4 = knowledge_share(k4);  // 1.4 / (0.65 + 1.4)
    CHECK(s4 > 0.66);
    CHECK(s4 < 0.71);
    size_t bytes = 0;
    for (const std::string& d : k4) bytes += d.size();
    CHECK(bytes > 195000);  // the same total
    CHECK(bytes < 210000);
    TaskSuiteConfig none = cfg;
    none.knowledge_weight = 0.0;
    CHECK(knowledge_share(task_training_documents(none, 200000)) == 0.0);
    none.knowledge_weight = -1;
    CHECK(error_of([&] { task_training_documents(none, 1000); }).find("knowledge weight") != std::string::npos);
  }

  TEST_CASE("evaluator: acc and acc_norm (by byte length) from hand-computed log-likelihoods") {
    TableModel tm;
    // " a": log 0.1 = -2.303; " bbbb": 4 log 0.5 = -2.773. acc takes "a"; acc_norm divides by
    // the choice's bytes without the delimiter: -2.303 / 1 vs -2.773 / 4 = -0.693: takes "bbbb".
    TaskItem it = choice_a_or_bbbb();
    TaskResult r = evaluate_task_items(tm, {it}, "t");
    CHECK(r.n == 1);
    CHECK(r.correct == 0);
    CHECK(r.correct_norm == 1);
    it.gold = 0;
    r = evaluate_task_items(tm, {it, it}, "t");
    CHECK(r.correct == 2);
    CHECK(r.correct_norm == 0);
    CHECK(r.kind == TaskKind::MultipleChoice);
    // Ties go to the first choice, as numpy's argmax.
    it.choices = {"cc", "dd"};
    it.gold = 0;
    CHECK(evaluate_task_items(tm, {it}, "t").correct == 1);
    // 95% interval of a proportion.
    CHECK(binomial_ci95(0.5, 100) == doctest::Approx(0.098));
    CHECK(binomial_ci95(1.0, 100) == 0.0);
    r.n = 100, r.correct = 50, r.correct_norm = 25;
    CHECK(format_task_result(r) == "acc  50.0% +-  9.8  acc_norm  25.0% +-  8.5  (n 100)");
    Json j = task_result_json(r);
    CHECK(j.at("acc").as_double() == 0.5);
    CHECK(j.at("acc_norm_ci95").as_double() == doctest::Approx(1.96 * std::sqrt(0.25 * 0.75 / 100)));
  }

  TEST_CASE("evaluator: --log-samples records each item's prediction, log-likelihoods and outcome") {
    TableModel tm;
    const TaskItem mc = choice_a_or_bbbb();
    TaskItem g;
    g.prompt = "Q: 1+1= A:";
    g.answer = "2";
    tm.canned = " 2\nQ:";
    std::vector<Json> s;
    TaskResult r = evaluate_task_items(tm, {mc, g}, "mixed", &s);
    REQUIRE(s.size() == 2);
    CHECK(r.correct == 1);  // the generation; acc takes "a"
    CHECK(s[0].at("task").as_string() == "mixed");
    CHECK(s[0].at("index").as_int() == 0);
    CHECK(s[0].at("doc").dump() == task_item_json(mc));
    REQUIRE(s[0].at("loglikelihoods").size() == 2);
    CHECK(s[0].at("loglikelihoods")[0].as_double() == doctest::Approx(std::log(0.1)));
    CHECK(s[0].at("loglikelihoods")[1].as_double() == doctest::Approx(4 * std::log(0.5)));
    CHECK(s[0].at("pred").as_int() == 0);
    CHECK(s[0].at("pred_norm").as_int() == 1);
    CHECK_FALSE(s[0].at("correct").as_bool());
    CHECK(s[0].at("correct_norm").as_bool());
    CHECK(s[1].at("index").as_int() == 1);
    CHECK(s[1].at("prediction").as_string() == "2");
    CHECK(s[1].at("correct").as_bool());
    CHECK(s[1].find("loglikelihoods") == nullptr);
    // The counts are those of the same call without samples.
    TaskResult plain = evaluate_task_items(tm, {mc, g}, "mixed");
    CHECK(plain.correct == r.correct);
    CHECK(plain.correct_norm == r.correct_norm);
  }

  TEST_CASE("evaluator: generation stops and exact-match predictions") {
    TaskItem g;
    g.prompt = "Q: 1+1= A:";
    g.answer = "2";
    CHECK(generation_done(g, " 2\n"));
    CHECK_FALSE(generation_done(g, " 2"));
    CHECK(generation_prediction(g, " 2 \nQ: 3+4") == "2");
    CHECK(generation_prediction(g, " 2") == "2");
    g.stop = {"\n", ";"};
    CHECK(generation_prediction(g, " 2; 3\n") == "2");
    TaskItem w;
    w.answer = "17";
    w.answer_after = "#### ";
    w.stop = {"\n"};
    CHECK_FALSE(generation_done(w, " 3+4=7\n"));  // a stop before the marker does not end it
    CHECK_FALSE(generation_done(w, " 3+4=7\n#### 71"));
    CHECK(generation_done(w, " 3+4=7\n#### 71\nQuestion"));
    CHECK(generation_prediction(w, " 3+4=7\n#### 71\nQuestion") == "71");
    CHECK(generation_prediction(w, " no marker\n") == "");
    TableModel tm;
    tm.canned = " 3+4=7\n####  17 \n";
    CHECK(evaluate_task_items(tm, {w}, "w").correct == 1);
    tm.canned = " 3+4=7\n#### 170\n";
    CHECK(evaluate_task_items(tm, {w}, "w").correct == 0);
  }

  TEST_CASE("evaluator: a zero model gives -n log V per token, checkpoint and packed alike") {
    const Tokenizer tok = Tokenizer::from_json(gguf_test::byte_level_tokenizer(), "bytes");
    ModelConfig c = tiny_config(true);
    c.vocab_size = tok.vocab_size();  // 261
    c.hidden_size = 128;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 1;
    c.head_dim = 64;
    c.intermediate_size = 128;
    c.eos_token_ids = {tok.eos_id()};
    Model m(c, /*trainable=*/false);
    m.params.fill(0.0f);  // every logit 0: each token costs exactly log V
    const double logV = std::log(double(c.vocab_size));
    auto check_model = [&](TaskModel& tm) {
      // " xyz": 4 byte tokens; "context" before it is not scored.
      CHECK(tm.loglikelihood("context", " xyz") == doctest::Approx(-4 * logV).epsilon(1e-6));
      CHECK(tm.loglikelihood("", " x") == doctest::Approx(-2 * logV).epsilon(1e-6));
      // Every choice costs (1 + bytes) log V: acc takes the shortest, acc_norm (divided by the
      // bytes without the delimiter) the longest.
      TaskItem it;
      it.kind = TaskKind::MultipleChoice;
      it.context = "Pick one:";
      it.choices = {"xyzzy", "q", "xyz"};
      it.gold = 1;
      TaskResult r = evaluate_task_items(tm, {it}, "mc");
      CHECK(r.correct == 1);
      CHECK(r.correct_norm == 0);
      it.gold = 0;
      CHECK(evaluate_task_items(tm, {it}, "mc").correct_norm == 1);
      // Greedy: every logit ties, the first maximum is token 0 (byte 0x00) until max_tokens.
      TaskItem g;
      g.prompt = "hello";
      g.answer = "x";
      g.max_tokens = 3;
      CHECK(tm.generate(g) == std::string(3, '\0'));
    };
    check_model(*make_task_model(m, tok));
    PackOptions opt;
    PackedModel pm = pack_model(m, opt);
    check_model(*make_task_model(pm, tok));
    // A context longer than the model's window is cut on the left, the choice kept whole.
    CHECK(make_task_model(m, tok)->loglikelihood(std::string(500, 'y'), " xyz") == doctest::Approx(-4 * logV).epsilon(1e-6));
    CHECK(error_of([&] { make_task_model(m, tok)->loglikelihood("c", std::string(100, 'x')); }).find("does not fit") !=
          std::string::npos);
  }

  TEST_CASE("jsonl: round trip of every built-in task") {
    TaskSuiteConfig cfg;
    cfg.world_people = 100;
    for (const std::string& t : builtin_task_names()) {
      std::vector<TaskItem> items = task_heldout_items(t, cfg, 5, kHeldout);
      std::string text;
      for (const TaskItem& it : items) text += task_item_json(it) + "\n";
      std::vector<TaskItem> back = parse_task_jsonl(text + "\n  \n", t + ".jsonl");
      REQUIRE(back.size() == items.size());
      for (size_t i = 0; i < items.size(); ++i) CHECK(task_item_json(back[i]) == task_item_json(items[i]));
    }
    std::vector<TaskItem> one = parse_task_jsonl(R"({"prompt": "p", "answer": " 7 ", "stop": ["\n", "."], "max_tokens": 5})", "f");
    CHECK(one[0].stop == std::vector<std::string>{"\n", "."});
    CHECK(one[0].max_tokens == 5);
    one = parse_task_jsonl(R"({"context": "c", "choices": ["x", "y"], "gold": 1, "delimiter": "\n", "id": 3})", "f");
    CHECK(one[0].delimiter == "\n");
    CHECK(parse_task_jsonl("\xef\xbb\xbf{\"prompt\": \"p\", \"answer\": \"1\"}\r\n", "bom").size() == 1);
    CHECK(one[0].gold == 1);
  }

  TEST_CASE("jsonl: each malformed line is an error naming file and line") {
    auto err = [](const std::string& line) {
      return error_of([&] { parse_task_jsonl("{\"prompt\": \"ok\", \"answer\": \"1\"}\n\n" + line + "\n", "t.jsonl"); });
    };
    auto has = [](const std::string& e, const char* what) {
      INFO(e);
      CHECK(e.rfind("t.jsonl:3: ", 0) == 0);
      CHECK(e.find(what) != std::string::npos);
    };
    has(err("{\"prompt\": \"p\", \"answer\": }"), "invalid JSON");
    has(err("{\"prompt\": \"p\""), "invalid JSON");
    has(err("[1, 2]"), "expected a JSON object");
    has(err("{\"question\": \"p\"}"), "no \"context\"");
    has(err("{\"prompt\": \"p\", \"answer\": \"a\", \"choices\": [\"x\", \"y\"]}"), "not both");
    has(err("{\"context\": \"c\", \"gold\": 0}"), "missing \"choices\"");
    has(err("{\"context\": \"c\", \"choices\": \"x\", \"gold\": 0}"), "list of strings");
    has(err("{\"context\": \"c\", \"choices\": [\"x\", 3], \"gold\": 0}"), "list of strings");
    has(err("{\"context\": \"c\", \"choices\": [\"x\"], \"gold\": 0}"), "at least 2");
    has(err("{\"context\": \"c\", \"choices\": [\"x\", \"\"], \"gold\": 0}"), "empty");
    has(err("{\"context\": \"c\", \"choices\": [\"x\", \"y\"]}"), "missing \"gold\"");
    has(err("{\"context\": \"c\", \"choices\": [\"x\", \"y\"], \"gold\": \"0\"}"), "integer index");
    has(err("{\"context\": \"c\", \"choices\": [\"x\", \"y\"], \"gold\": 1.5}"), "integer index");
    has(err("{\"context\": \"c\", \"choices\": [\"x\", \"y\"], \"gold\": 2}"), "outside 0..1");
    has(err("{\"context\": \"c\", \"choices\": [\"x\", \"y\"], \"gold\": -1}"), "outside 0..1");
    has(err("{\"context\": 5, \"choices\": [\"x\", \"y\"], \"gold\": 0}"), "\"context\" must be a string");
    has(err("{\"choices\": [\"x\", \"y\"], \"gold\": 0}"), "missing \"context\"");
    has(err("{\"context\": \"c\", \"choices\": [\"x\", \"y\"], \"gold\": 0, \"stop\": \"\\n\"}"), "generative");
    has(err("{\"prompt\": \"p\"}"), "missing \"answer\"");
    has(err("{\"prompt\": \"p\", \"answer\": 7}"), "\"answer\" must be a string");
    has(err("{\"prompt\": \"p\", \"answer\": \"  \"}"), "\"answer\" is empty");
    has(err("{\"prompt\": [], \"answer\": \"1\"}"), "\"prompt\" must be a string");
    has(err("{\"prompt\": \"p\", \"answer\": \"1\", \"stop\": 3}"), "\"stop\" must be");
    has(err("{\"prompt\": \"p\", \"answer\": \"1\", \"stop\": [\"\\n\", 1]}"), "\"stop\" must be");
    has(err("{\"prompt\": \"p\", \"answer\": \"1\", \"stop\": \"\"}"), "empty");
    has(err("{\"prompt\": \"p\", \"answer\": \"1\", \"max_tokens\": 0}"), "max_tokens");
    has(err("{\"prompt\": \"p\", \"answer\": \"1\", \"max_tokens\": \"8\"}"), "max_tokens");
    has(err("{\"prompt\": \"p\", \"answer\": \"1\", \"answer_after\": \"\"}"), "answer_after");
    has(err("{\"prompt\": \"p\", \"answer\": \"1\", \"delimiter\": \" \"}"), "multiple-choice");
    has(err("\xff\xfe"), "invalid JSON");
    CHECK(error_of([] { parse_task_jsonl("\n \n", "e.jsonl"); }).find("e.jsonl: no task items") != std::string::npos);
    CHECK(error_of([] { read_task_jsonl("/nonexistent/x.jsonl"); }).find("no such file") != std::string::npos);
  }
}
