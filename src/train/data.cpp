#include "train/data.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "core/checksum.h"
#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "io/json.h"
#include "io/tokenizer.h"
#include "train/chat.h"
#include "train/tasks.h"
#include "io/file_util.h"
#include "train/shards.h"

namespace razor {

std::string default_corpus_dir() {
  const char* e = std::getenv("RAZOR_CORPUS_DIR");
  return (e && *e) ? std::string(e) : std::string("data/corpus");
}

static std::string source_key(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) fail("--data: %s: no such file", path.c_str());
  return strfmt("%s:%lld:%lld", path.c_str(), (long long)st.st_size, (long long)st.st_mtime);
}

static void ensure_default_corpus(const std::string& dir) {
  if (path_exists(dir + "/train.txt") && path_exists(dir + "/valid.txt")) return;
  log_note("razor: the default corpus is not in %s yet; fetching it with tools/fetch_corpus.sh ...\n",
           dir.c_str());
  if (!path_exists("tools/fetch_corpus.sh"))
    fail("--data default: %s/train.txt is missing and tools/fetch_corpus.sh is not here; run razor from the "
         "repository root or run `bash tools/fetch_corpus.sh` there first",
         dir.c_str());
  std::string cmd = "bash tools/fetch_corpus.sh '" + dir + "' 1>&2";
  if (std::system(cmd.c_str()) != 0 || !path_exists(dir + "/train.txt"))
    fail("--data default: tools/fetch_corpus.sh failed (it needs Debian's package archive); the corpus is "
         "expected in %s/{train,valid}.txt",
         dir.c_str());
}

// Splits text documents (empty-line separated) into train / held-out by index.
static void split_text_docs(const std::string& text, int every, std::vector<std::string>& train,
                            std::vector<std::string>& valid) {
  std::vector<std::string_view> docs = split_documents(text);
  for (size_t i = 0; i < docs.size(); ++i) {
    if (every > 0 && i % size_t(every) == size_t(every - 1)) valid.emplace_back(docs[i]);
    else train.emplace_back(docs[i]);
  }
}

// Chat records (train/chat.h) into a train and a held-out records shard.
static void build_chat_shards(const std::string& data, const Tokenizer& tok, const std::string& tokenizer_path,
                              const PreparedData& out) {
  const ChatTemplate tmpl = ChatTemplate::for_tokenizer(tok, tokenizer_path);
  const std::string text = read_file(data);
  struct Split {
    std::vector<int32_t> ids;
    std::vector<uint64_t> starts;
    RecordSpec spec;
  } tr, va;
  size_t lineno = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    bool blank = true;
    for (char ch : line) blank = blank && (ch == ' ' || ch == '\t');
    if (blank) continue;
    const ChatTokens ct = tmpl.render(tok, parse_chat_record(line, strfmt("%s:%zu", data.c_str(), lineno)));
    Split& s = chat_record_held_out(line) ? va : tr;
    s.starts.push_back(s.ids.size());
    s.ids.insert(s.ids.end(), ct.ids.begin(), ct.ids.end());
    s.spec.mask.insert(s.spec.mask.end(), ct.mask.begin(), ct.mask.end());
  }
  if (tr.starts.empty()) fail("%s: no chat records outside the held-out split (%zu lines)", data.c_str(), lineno);
  const uint32_t V = uint32_t(tok.vocab_size());
  for (Split* s : {&tr, &va}) {
    s->spec.records = true;
    s->spec.pad_id = tok.eos_id();
  }
  write_token_shard(out.train_shard, tr.ids, tr.starts, V, tr.spec);
  if (!va.starts.empty()) write_token_shard(out.valid_shard, va.ids, va.starts, V, va.spec);
  log_note("razor: %zu chat records (%zu tokens), %zu held out (%zu tokens)\n", tr.starts.size(), tr.ids.size(),
           va.starts.size(), va.ids.size());
}

PreparedData prepare_data(const std::string& data, const std::string& tokenizer_path, const std::string& cache_dir,
                          bool records) {
  PreparedData out;
  const bool chat = ends_with(data, ".jsonl");
  if (records && (data == "default" || ends_with(data, ".tok") || chat || is_directory(data)))
    fail("--records: applies to FILE.txt and FILE.ids (not to default or a DIR; FILE.jsonl is always one record per sequence; a .tok "
         "shard keeps how it was built)");
  if (ends_with(data, ".tok")) {
    TokenShard probe(data);  // validates
    out.train_shard = data;
    std::string v = data.substr(0, data.size() - 4) + ".valid.tok";
    if (path_exists(v)) out.valid_shard = v;
    out.description = "token shard " + data;
    return out;
  }
  // The cache key needs only the tokenizer's bytes; it is parsed only when shards are built.
  const std::string tok_hash = hex64(hash64_file(tokenizer_path));

  const TaskSuiteConfig suite = default_mix_suite();  // what --data default mixes in
  std::string key;
  std::vector<std::string> sources;
  if (data == "default") {
    std::string dir = default_corpus_dir();
    ensure_default_corpus(dir);
    sources = {dir + "/train.txt", dir + "/valid.txt"};
    key = "default|" + source_key(sources[0]) + "|" + source_key(sources[1]) +
          strfmt("|tasks-v%d:%g:p%d:k%g:%llu", kTaskSuiteVersion, kDefaultTaskMix, suite.world_people,
                 suite.knowledge_weight, (unsigned long long)suite.seed);
  } else if (is_directory(data)) {
    sources = {data + "/train.txt", data + "/valid.txt"};
    for (const std::string& s : sources)
      if (!path_exists(s)) fail("--data %s: a data directory needs train.txt and valid.txt (razor tasks --write DIR)", data.c_str());
    key = "dir|" + source_key(sources[0]) + "|" + source_key(sources[1]);
  } else {
    sources = {data};
    key = source_key(data);
  }
  if (records) key += "|records";
  if (chat) key += "|chatml-v1";  // the rendering (train/chat.h); a change must change this
  key += "|" + tok_hash;
  std::string dir = cache_dir + "/" + hex64(fnv1a64(key.data(), key.size())).substr(0, 12);
  out.train_shard = dir + "/train.tok";
  out.valid_shard = dir + "/valid.tok";
  out.description = (data == "default" ? strfmt("default corpus + tasks (mix %g, knowledge %g)", kDefaultTaskMix,
                                                 suite.knowledge_weight)
                                        : data) +
                    " (" +
                    (chat ? "chat records, ChatML, loss on assistant tokens; " : records ? "one record per sequence; " : "") +
                    "tokenizer " + tokenizer_path + ")";
  if (chat && path_exists(out.train_shard) && path_exists(dir + "/chat.done")) {
    if (!path_exists(out.valid_shard)) out.valid_shard.clear();  // no record held out
    return out;
  }
  if (!chat && path_exists(out.train_shard) && path_exists(out.valid_shard)) return out;

  Tokenizer tok = Tokenizer::load(tokenizer_path);
  const int32_t eos = tok.eos_id();
  if (eos < 0) fail("%s: the tokenizer has no end-of-text token (<|endoftext|> or similar)", tokenizer_path.c_str());
  const uint32_t V = uint32_t(tok.vocab_size());
  make_dirs(dir);
  TextEncoder enc = [&tok](std::string_view s) { return tok.encode(s); };
  log_note("razor: tokenizing %s into %s ...\n", data.c_str(), dir.c_str());
  RecordSpec rec;
  rec.records = records;
  rec.pad_id = eos;
  if (chat) {
    build_chat_shards(data, tok, tokenizer_path, out);
    write_file_atomic(dir + "/chat.done", "");
    if (!path_exists(out.valid_shard)) out.valid_shard.clear();
  } else if (data == "default") {
    const std::string text = read_file(sources[0]);
    std::vector<std::string> corpus_docs;
    for (std::string_view d : split_documents(text)) corpus_docs.emplace_back(d);
    ShardBuilder tb(enc, eos, V);
    for (const std::string& d : mix_training_documents(corpus_docs, kDefaultTaskMix, suite))
      tb.add_document(d, sources[0]);
    tb.write(out.train_shard);
    size_t m = build_token_shard({sources[1]}, out.valid_shard, enc, eos, V);
    std::fprintf(stderr, "razor: %zu training tokens (corpus + tasks), %zu validation tokens\n", tb.n_tokens(), m);
  } else if (is_directory(data)) {
    size_t n = build_token_shard({sources[0]}, out.train_shard, enc, eos, V);
    size_t m = build_token_shard({sources[1]}, out.valid_shard, enc, eos, V);
    log_note("razor: %zu training tokens, %zu validation tokens\n", n, m);
  } else if (ends_with(data, ".ids")) {
    std::string text = read_file(data);
    std::istringstream in(text);
    std::string line;
    std::vector<int32_t> tr, va;
    std::vector<uint64_t> tr_docs, va_docs;
    size_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      std::istringstream ls(line);
      std::vector<int32_t> ids;
      long long v;
      std::string word;
      while (ls >> word) {
        char* end = nullptr;
        v = std::strtoll(word.c_str(), &end, 10);
        if (*end != '\0' || v < 0 || v >= (long long)V)
          fail("%s:%zu: '%s' is not a token id in [0, %u)", data.c_str(), lineno, word.c_str(), V);
        ids.push_back(int32_t(v));
      }
      if (ids.empty()) continue;
      bool held = lineno % 20 == 0;
      auto& dst = held ? va : tr;
      (held ? va_docs : tr_docs).push_back(dst.size());
      dst.insert(dst.end(), ids.begin(), ids.end());
      dst.push_back(eos);
    }
    if (tr.empty()) fail("%s: no token ids found", data.c_str());
    write_token_shard(out.train_shard, tr, tr_docs, V, rec);
    write_token_shard(out.valid_shard, va, va_docs, V, va_docs.empty() ? RecordSpec() : rec);
  } else {
    std::string text = read_file(data);
    std::vector<std::string> train, valid;
    split_text_docs(text, 33, train, valid);
    if (train.empty()) fail("%s: no text found", data.c_str());
    ShardBuilder tb(enc, eos, V), vb(enc, eos, V);
    for (auto& d : train) tb.add_document(d, data);
    for (auto& d : valid) vb.add_document(d, data);
    tb.write(out.train_shard, rec);
    vb.write(out.valid_shard, vb.n_docs() ? rec : RecordSpec());
  }
  return out;
}

}  // namespace razor
