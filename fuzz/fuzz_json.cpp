// Fuzz target: Json::parse on arbitrary bytes. A parsed document must dump, and its dump
// must parse back to the same dump (the writer only emits what the parser accepts).
#include "fuzz/fuzz_common.h"
#include "io/json.h"

using namespace razor;
using razor_fuzz::seed;

static void make_seeds(const std::string& dir) {
  Json o = Json::object();
  o.set("name", "razor \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \"quoted\"\n\t\\");
  o.set("int", int64_t(-9007199254740993LL));
  o.set("double", 0.1);
  o.set("tiny", 5e-324);
  o.set("flags", Json::array());
  Json a = Json::array();
  a.push_back(true);
  a.push_back(Json());
  a.push_back(Json::object());
  a.push_back(int64_t(1) << 62);
  o.set("list", a);
  seed(dir, "object.json", o.dump(2));
  seed(dir, "compact.json", o.dump());
  seed(dir, "escapes.json", "[\"\\u00e9\\ud83d\\ude00\\/\\b\\f\\r\", -0.0, 1E+2, 1e-7, 123456789012345678901234]");
  seed(dir, "nested.json", "[[[[[[[[{\"a\":[{}]}]]]]]]]]");
}
RAZOR_FUZZ_INIT(make_seeds)

RAZOR_FUZZ_ONE_INPUT {
  Json j = Json::parse(razor_fuzz::as_text(data, size), "fuzz.json");
  const std::string once = j.dump(), pretty = j.dump(1);
  if (Json::parse(once).dump() != once || Json::parse(pretty).dump() != once) {
    std::fprintf(stderr, "dump does not round-trip: %s\n", once.c_str());
    std::abort();
  }
}
