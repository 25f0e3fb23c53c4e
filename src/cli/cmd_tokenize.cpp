// razor tokenize: text to ids and back with a Hugging Face tokenizer.json, and training a
// small byte-level BPE tokenizer.
#include <chrono>
#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "io/json.h"
#include "io/tokenizer.h"

namespace razor {

namespace {

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i;
    if (i == s.size()) break;
    size_t j = i;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    RZ_CHECK(j > i && j - i <= 9 && (j == s.size() || s[j] == ' ' || s[j] == ',' || s[j] == '\n' || s[j] == '\t' ||
                                      s[j] == '\r'),
             "--decode: \"%s\" is not a list of token ids", s.c_str());
    ids.push_back(int32_t(std::stol(s.substr(i, j - i))));
    i = j;
  }
  return ids;
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  ArgParser ap("razor tokenize",
               "Encode text to token ids with a Hugging Face tokenizer.json (byte-level BPE: Qwen2/Qwen3, Llama 3, "
               "GPT-2), decode ids to text, or train a byte-level BPE tokenizer on a corpus.\n"
               "  razor tokenize -t tokenizer.json \"some text\"      ids on one line\n"
               "  razor tokenize -t tokenizer.json -f file.txt --count\n"
               "  razor tokenize -t tokenizer.json --decode \"9707 11 1879\"\n"
               "  razor tokenize --train -f corpus.txt --vocab 4096 -o tokenizer.json");
  ap.option("-t,--tokenizer", "", "tokenizer.json to load");
  ap.option("-f,--file", "", "read the text (or the training corpus) from this file");
  ap.option("--decode", "", "space-separated token ids to turn back into text");
  ap.flag("--count", "print the token count and the encode speed instead of the ids");
  ap.flag("--train", "train a byte-level BPE tokenizer on -f and write it to -o");
  ap.option("--vocab", "4096", "--train: vocabulary size, counting the 256 bytes and 3 special tokens");
  ap.option("--min-frequency", "2", "--train: stop when no pair occurs this often");
  ap.option("-o,--out", "", "--train: output tokenizer.json");
  ap.allow_positionals("TEXT", "text to encode (instead of -f)");
  if (!ap.parse(argc, argv)) return 0;

  if (ap.on("--train")) {
    RZ_CHECK(ap.given("--file"), "--train: needs -f corpus.txt");
    RZ_CHECK(ap.given("--out"), "--train: needs -o tokenizer.json");
    BpeTrainOptions opt;
    opt.vocab_size = int(ap.i64_in("--vocab", 256 + 3, 1 << 24));
    opt.min_frequency = int(ap.i64_in("--min-frequency", 1, int64_t(1) << 40));
    std::vector<std::string> texts{read_file(ap.str("--file"))};
    auto t0 = std::chrono::steady_clock::now();
    std::string json = train_bpe(texts, opt);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    write_file_atomic(ap.str("--out"), json);
    Tokenizer tok = Tokenizer::from_json(json, ap.str("--out"));
    std::printf("trained %d tokens (%zu merges) on %.1f KB in %.2f s -> %s\n", tok.vocab_size(), tok.merge_count(),
                texts[0].size() / 1e3, secs, ap.str("--out").c_str());
    return 0;
  }

  RZ_CHECK(ap.given("--tokenizer"), "-t/--tokenizer: required (a tokenizer.json)");
  auto t0 = std::chrono::steady_clock::now();
  Tokenizer tok = Tokenizer::load(ap.str("--tokenizer"));
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (ap.given("--decode")) {
    RZ_CHECK(!ap.given("--file") && ap.positionals().empty(), "--decode: takes ids only, not -f or TEXT");
    std::string text = tok.decode(parse_ids(ap.str("--decode")));
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::printf("\n");
    return 0;
  }

  std::string text;
  if (ap.given("--file")) {
    RZ_CHECK(ap.positionals().empty(), "-f: give either -f FILE or TEXT, not both");
    text = read_file(ap.str("--file"));
  } else {
    RZ_CHECK(!ap.positionals().empty(), "nothing to encode: give TEXT or -f FILE");
    for (size_t i = 0; i < ap.positionals().size(); ++i) {
      if (i) text += ' ';
      text += ap.positionals()[i];
    }
  }
  t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> ids = tok.encode(text);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (ap.on("--count")) {
    std::printf("%zu tokens from %zu bytes (%.3f bytes/token); encode %.2f MB/s (%.3f s, 1 thread); load %.2f s\n",
                ids.size(), text.size(), ids.empty() ? 0.0 : double(text.size()) / ids.size(),
                secs > 0 ? text.size() / secs / 1e6 : 0.0, secs, load_s);
    return 0;
  }
  std::string line;
  line.reserve(ids.size() * 7);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}

}  // namespace razor
