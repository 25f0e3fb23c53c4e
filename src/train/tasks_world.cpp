// The knowledge world and the next-sentence items of the built-in suite (train/tasks.h).
// The world: world_people invented people (syllable names, unique), each with a birthplace,
// a trade, a favourite colour and a pet. Training documents state the facts with 3-4
// statement templates per attribute (one biography per document, attribute order shuffled)
// and ask non-held-out facts with twelve training question templates per attribute (varied
// frames, several shared across attributes, so the attribute must be read from its noun:
// "What <noun> does {N} <verb>?" with four or more verbs for every attribute, and
// "What <noun> does {N} have?" for all four); a thirteenth question template is used only by
// the held-out items, which ask only held-out facts. No training question uses a held-out
// template's verb ("love", "look after", "work", "birthplace"): an unseen verb must not point
// to one attribute (with eight templates, the trade had the most verbs and the stage-5
// teacher answered unseen-verb colour and pet questions with a trade).
#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "train/shards.h"
#include "train/tasks.h"

namespace razor {

namespace {

const std::vector<std::string> kTowns = {"Ashford",   "Brookhaven", "Carlow",     "Dunmore",   "Elmstead",  "Fairhill",
                                         "Glenmoor",  "Harwick",    "Ivybridge",  "Kingsley",  "Larkfield", "Millbrook",
                                         "Northwood", "Oakridge",   "Pinehurst",  "Queensbury", "Redcliff", "Stonebridge",
                                         "Thornbury", "Underhill",  "Westbrook",  "Yarrow",    "Ambleside", "Bramley",
                                         "Cobham",    "Daleford",   "Eastwick",   "Foxley",    "Greystone", "Hollowell"};
const std::vector<std::string> kTrades = {"baker",  "farmer", "potter", "weaver",  "sailor",   "miner",    "tailor",
                                          "carpenter", "fisher", "painter", "doctor", "teacher", "smith", "cook",
                                          "miller", "mason", "gardener", "shepherd", "brewer", "builder"};
const std::vector<std::string> kColours = {"red",   "blue",  "green", "yellow", "purple", "orange",
                                           "white", "black", "brown", "grey",   "pink",   "silver"};
const std::vector<std::string> kPets = {"cat",     "dog",    "parrot", "rabbit", "goat",  "horse",
                                        "turtle",  "hamster", "canary", "ferret", "pony",  "lizard"};

struct Attribute {
  const char* name;
  const std::vector<std::string>* values;
  std::vector<std::string> statements;  // {N}: the person, {V}: the value
  std::vector<std::string> questions;   // training templates
  std::string heldout_question;         // used only by held-out items
};

const std::vector<Attribute>& attributes() {
  static const std::vector<Attribute> a = {
      {"birthplace",
       &kTowns,
       {"{N} was born in {V}.", "{N} comes from {V}.", "The town of {V} is where {N} was born.",
        "{N}'s birthplace is {V}."},
       {"Where was {N} born?", "In which town was {N} born?", "Which town does {N} come from?",
        "What is the home town of {N}?", "Where does {N} come from?", "Name the town where {N} was born.",
        "What town does {N} come from?", "What town was {N} born in?", "What town does {N} call home?",
        "What town did {N} grow up in?", "Which town is {N} from?", "What home town does {N} have?"},
       "What is the birthplace of {N}?"},
      {"trade",
       &kTrades,
       {"{N} works as a {V}.", "{N} is a {V} by trade.", "{N} earns a living as a {V}.",
        "People know {N} as a skilled {V}."},
       {"What does {N} do for a living?", "What is the trade of {N}?", "What is {N}'s job?",
        "How does {N} earn a living?", "What job does {N} have?", "Which trade does {N} follow?",
        "What trade does {N} practise?", "What trade is {N} known for?", "What job does {N} hold?",
        "What craft does {N} follow?", "What trade did {N} learn?", "Which trade is {N}'s?"},
       "What work does {N} do?"},
      {"colour",
       &kColours,
       {"{N}'s favourite colour is {V}.", "{N} likes {V} more than any other colour.",
        "The colour {N} loves best is {V}."},
       {"What is {N}'s favourite colour?", "Which colour does {N} like best?", "What is the favourite colour of {N}?",
        "Which colour is {N}'s favourite?", "Name the colour {N} likes best.", "Tell me {N}'s favourite colour.",
        "What colour does {N} like best?", "What colour does {N} prefer?", "What colour does {N} enjoy?",
        "What colour does {N} favour?", "What colour does {N} pick first?", "What favourite colour does {N} have?"},
       "What colour does {N} love most?"},
      {"pet",
       &kPets,
       {"{N} keeps a {V} as a pet.", "{N} has a pet {V}.", "At home, {N} looks after a {V}."},
       {"What pet does {N} have?", "Which animal does {N} keep as a pet?", "What is {N}'s pet?",
        "What kind of pet does {N} keep?", "What is the pet of {N}?", "Which animal lives with {N}?",
        "What animal does {N} keep?", "What animal does {N} have at home?", "What animal does {N} own?",
        "What animal does {N} care for?", "What animal does {N} feed?", "What animal lives with {N}?"},
       "What animal does {N} look after?"},
  };
  return a;
}

std::string fill_template(const std::string& tmpl, const std::string& n, const std::string& v) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl.compare(i, 3, "{N}") == 0) out += n, i += 2;
    else if (tmpl.compare(i, 3, "{V}") == 0) out += v, i += 2;
    else out += tmpl[i];
  }
  return out;
}

struct PersonFacts {
  std::string name;
  int value[4];  // index into each attribute's values
};

std::string syllables(Rng& rng, int n) {
  static const char* const onset[] = {"b", "d", "f", "g", "k", "l", "m", "n", "p", "r",
                                      "s", "t", "v", "z", "br", "dr", "kr", "tr", "st", "sh"};
  static const char* const vowel[] = {"a", "e", "i", "o", "u", "ai", "ei", "ou"};
  std::string s;
  for (int i = 0; i < n; ++i) s += std::string(onset[rng.below(20)]) + vowel[rng.below(8)];
  if (rng.below(2)) s += "n";
  s[0] = char(s[0] - 'a' + 'A');
  return s;
}

std::vector<PersonFacts> make_world(const TaskSuiteConfig& cfg) {
  RZ_CHECK(cfg.world_people > 0 && cfg.world_people <= 100000, "knowledge world: people must be in 1..100000 (got %d)",
           cfg.world_people);
  Rng rng(cfg.seed ^ 0x776f726c642d7070ull);  // "world-pp"
  std::set<std::string> seen;
  std::vector<PersonFacts> w;
  while (int(w.size()) < cfg.world_people) {
    PersonFacts p;
    p.name = syllables(rng, 2) + " " + syllables(rng, 2 + int(rng.below(2)));
    for (int a = 0; a < 4; ++a) p.value[a] = int(rng.below(attributes()[size_t(a)].values->size()));
    if (seen.insert(p.name).second) w.push_back(p);
  }
  return w;
}

std::string fact_key(const PersonFacts& p, int a) { return p.name + "|" + attributes()[size_t(a)].name; }

}  // namespace

std::vector<TaskItem> knowledge_items(const TaskSuiteConfig& cfg, size_t n, bool multiple_choice,
                                      bool training_template) {
  const std::vector<PersonFacts> world = make_world(cfg);
  // The held-out facts in a fixed shuffled order; generative and multiple-choice items ask the
  // same facts, first n of them.
  std::vector<std::pair<size_t, int>> facts;
  for (size_t i = 0; i < world.size(); ++i)
    for (int a = 0; a < 4; ++a)
      if (task_key_heldout("knowledge", fact_key(world[i], a))) facts.push_back({i, a});
  Rng rng(cfg.seed ^ 0x6b6e6f772d657661ull);  // "know-eva"
  for (size_t i = facts.size(); i > 1; --i) std::swap(facts[i - 1], facts[rng.below(i)]);
  if (facts.size() > n) facts.resize(n);
  Rng trng(cfg.seed ^ 0x6b6e6f772d747470ull);  // "know-ttp": which training template (own stream)
  std::vector<TaskItem> out;
  for (const auto& f : facts) {
    const PersonFacts& p = world[f.first];
    const Attribute& at = attributes()[size_t(f.second)];
    const std::string& value = (*at.values)[size_t(p.value[f.second])];
    TaskItem it;
    const std::string& tmpl =
        training_template ? at.questions[size_t(trng.below(at.questions.size()))] : at.heldout_question;
    const std::string q = "Q: " + fill_template(tmpl, p.name, "") + " A:";
    if (!multiple_choice) {
      it.prompt = q;
      it.answer = value;
      it.max_tokens = 8;
    } else {
      it.kind = TaskKind::MultipleChoice;
      it.context = q;
      std::vector<int> pick = {p.value[f.second]};
      while (pick.size() < 4) {
        int v = int(rng.below(at.values->size()));
        if (std::find(pick.begin(), pick.end(), v) == pick.end()) pick.push_back(v);
      }
      for (size_t i = pick.size(); i > 1; --i) std::swap(pick[i - 1], pick[rng.below(i)]);
      for (int v : pick) it.choices.push_back((*at.values)[size_t(v)]);
      it.gold = int(std::find(pick.begin(), pick.end(), p.value[f.second]) - pick.begin());
    }
    out.push_back(std::move(it));
  }
  return out;
}

void knowledge_statement_documents(const TaskSuiteConfig& cfg, size_t budget, std::vector<std::string>& out) {
  const std::vector<PersonFacts> world = make_world(cfg);
  Rng rng(cfg.seed ^ 0x6b6e6f772d737461ull);  // "know-sta"
  // Passes over the whole world, each biography phrased afresh, until the budget is spent.
  size_t bytes = 0;
  for (size_t i = 0; bytes < budget; i = (i + 1) % world.size()) {
    const PersonFacts& p = world[i];
    int order[4] = {0, 1, 2, 3};
    for (int k = 3; k > 0; --k) std::swap(order[k], order[rng.below(uint64_t(k) + 1)]);
    std::string doc;
    for (int a : order) {
      const Attribute& at = attributes()[size_t(a)];
      if (!doc.empty()) doc += ' ';
      doc += fill_template(at.statements[rng.below(at.statements.size())], p.name, (*at.values)[size_t(p.value[a])]);
    }
    bytes += doc.size();
    out.push_back(std::move(doc));
  }
}

void knowledge_question_documents(const TaskSuiteConfig& cfg, size_t budget, std::vector<std::string>& out) {
  const std::vector<PersonFacts> world = make_world(cfg);
  Rng rng(cfg.seed ^ 0x6b6e6f772d717561ull);  // "know-qua"
  for (size_t bytes = 0; bytes < budget;) {
    std::string doc;
    for (int l = 0; l < 8;) {
      const PersonFacts& p = world[rng.below(world.size())];
      const int a = int(rng.below(4));
      if (task_key_heldout("knowledge", fact_key(p, a))) continue;
      const Attribute& at = attributes()[size_t(a)];
      if (l++) doc += '\n';
      doc += "Q: " + fill_template(at.questions[rng.below(at.questions.size())], p.name, "") + " A: " +
             (*at.values)[size_t(p.value[a])];
    }
    bytes += doc.size();
    out.push_back(std::move(doc));
  }
}

// ---- next sentence

namespace {

struct Sentence {
  std::string text;
  std::string sep;  // what precedes it in the text ("\n" or " "); "" for a document's first
};

// Sentences of one document: its lines, and inside a line pieces ending in ". ", "? ", "! ".
std::vector<Sentence> sentences_of(std::string_view doc) {
  std::vector<Sentence> out;
  size_t line_start = 0;
  while (line_start <= doc.size()) {
    size_t nl = doc.find('\n', line_start);
    if (nl == std::string_view::npos) nl = doc.size();
    std::string_view line = doc.substr(line_start, nl - line_start);
    size_t s = 0;
    bool first_in_line = true;
    for (size_t i = 0; i < line.size(); ++i) {
      const bool end = (line[i] == '.' || line[i] == '?' || line[i] == '!') && i + 1 < line.size() && line[i + 1] == ' ';
      if (end || i + 1 == line.size()) {
        std::string_view t = line.substr(s, i + 1 - s);
        if (!t.empty()) out.push_back({std::string(t), out.empty() ? "" : first_in_line ? "\n" : " "});
        first_in_line = false;
        s = i + 2;
        if (end) ++i;
      }
    }
    line_start = nl + 1;
  }
  return out;
}

}  // namespace

std::vector<TaskItem> nextsent_items(const TaskSuiteConfig& cfg, size_t n, std::string_view heldout_text) {
  // Candidates: a sentence of 16..200 bytes with 24..300 bytes of its document before it (the
  // context: the preceding sentences that fit, as they stand in the text).
  struct Cand {
    std::string context, next, sep;
  };
  std::vector<Cand> cands;
  for (std::string_view doc : split_documents(heldout_text)) {
    std::vector<Sentence> s = sentences_of(doc);
    for (size_t i = 1; i < s.size(); ++i) {
      if (s[i].text.size() < 16 || s[i].text.size() > 200) continue;
      std::string ctx;
      for (size_t j = i; j-- > 0;) {
        std::string piece = s[j].text + (j + 1 < i ? s[j + 1].sep : std::string()) + ctx;
        if (piece.size() > 300) break;
        ctx = piece;
      }
      if (ctx.size() < 24) continue;
      cands.push_back({ctx, s[i].text, s[i].sep});
    }
  }
  std::vector<TaskItem> out;
  if (cands.size() < 4) return out;
  Rng rng(cfg.seed ^ 0x6e6578742d657661ull);  // "next-eva"
  std::vector<size_t> order(cands.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  for (size_t k = 0; k < order.size() && out.size() < n; ++k) {
    const Cand& c = cands[order[k]];
    TaskItem it;
    it.kind = TaskKind::MultipleChoice;
    it.context = c.context;
    it.delimiter = c.sep;
    it.choices = {c.next};
    for (int tries = 0; it.choices.size() < 4 && tries < 100; ++tries) {
      const std::string& d = cands[rng.below(cands.size())].next;
      if (std::find(it.choices.begin(), it.choices.end(), d) == it.choices.end()) it.choices.push_back(d);
    }
    if (it.choices.size() < 4) continue;
    for (size_t i = 4; i > 1; --i) std::swap(it.choices[i - 1], it.choices[rng.below(i)]);
    it.gold = int(std::find(it.choices.begin(), it.choices.end(), c.next) - it.choices.begin());
    out.push_back(std::move(it));
  }
  return out;
}

}  // namespace razor
