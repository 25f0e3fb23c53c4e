#include "train/chat.h"

#include "core/checksum.h"
#include "core/error.h"
#include "io/file_util.h"
#include "io/json.h"

namespace razor {

namespace {

const std::string& string_field(const Json& obj, const char* key, const std::string& where, const std::string& what) {
  const Json* v = obj.find(key);
  if (!v) fail("%s: %s has no \"%s\"", where.c_str(), what.c_str(), key);
  if (!v->is_string()) fail("%s: %s: \"%s\" is not a string", where.c_str(), what.c_str(), key);
  return v->as_string();
}

bool blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

}  // namespace

std::vector<ChatMessage> parse_chat_record(std::string_view line, const std::string& where) {
  if (blank(line)) fail("%s: empty record", where.c_str());
  const Json j = Json::parse(line, where);
  if (!j.is_object()) fail("%s: a record must be a JSON object with \"messages\" or \"prompt\"/\"response\"", where.c_str());
  std::vector<ChatMessage> out;
  const Json* msgs = j.find("messages");
  if (msgs) {
    if (j.has("prompt") || j.has("response"))
      fail("%s: a record has either \"messages\" or \"prompt\"/\"response\", not both", where.c_str());
    if (!msgs->is_array()) fail("%s: \"messages\" is not an array", where.c_str());
    if (msgs->size() == 0) fail("%s: empty record (\"messages\" is [])", where.c_str());
    for (size_t i = 0; i < msgs->size(); ++i) {
      const Json& m = (*msgs)[i];
      const std::string what = "message " + std::to_string(i + 1);
      if (!m.is_object()) fail("%s: %s is not an object with \"role\" and \"content\"", where.c_str(), what.c_str());
      ChatMessage cm;
      cm.role = string_field(m, "role", where, what);
      cm.content = string_field(m, "content", where, what);
      if (cm.role != "system" && cm.role != "user" && cm.role != "assistant")
        fail("%s: %s: unknown role \"%s\" (system, user or assistant)", where.c_str(), what.c_str(), cm.role.c_str());
      out.push_back(std::move(cm));
    }
  } else if (j.has("prompt") || j.has("response")) {
    if (const Json* s = j.find("system")) {
      if (!s->is_string()) fail("%s: \"system\" is not a string", where.c_str());
      out.push_back({"system", s->as_string()});
    }
    out.push_back({"user", string_field(j, "prompt", where, "the record")});
    out.push_back({"assistant", string_field(j, "response", where, "the record")});
  } else {
    fail("%s: a record needs \"messages\" or \"prompt\" and \"response\"", where.c_str());
  }
  bool assistant = false;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].role != "assistant") continue;
    assistant = true;
    if (out[i].content.empty())
      fail("%s: message %zu (assistant): empty content (nothing to train on)", where.c_str(), i + 1);
  }
  if (!assistant) fail("%s: no assistant turn (the loss is on assistant tokens only)", where.c_str());
  return out;
}

std::string render_chatml(const std::vector<ChatMessage>& messages) {
  std::string s;
  for (const ChatMessage& m : messages) s += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  return s;
}

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tok, const std::string& tokenizer_path) {
  ChatTemplate t;
  t.im_start_ = tok.added_id("<|im_start|>");
  t.im_end_ = tok.added_id("<|im_end|>");
  if (t.im_start_ < 0 || t.im_end_ < 0)
    fail("%s: the tokenizer has no <|im_start|>/<|im_end|> tokens: razor renders chat data (.jsonl) only with the "
         "ChatML template (Qwen's); use a ChatML tokenizer, or give the text as .txt / .ids",
         tokenizer_path.c_str());
  const size_t slash = tokenizer_path.find_last_of('/');
  const std::string cfg =
      (slash == std::string::npos ? std::string() : tokenizer_path.substr(0, slash + 1)) + "tokenizer_config.json";
  if (path_exists(cfg)) {
    const Json c = Json::parse(read_file(cfg), cfg);
    const Json* ct = c.is_object() ? c.find("chat_template") : nullptr;
    if (ct && !ct->is_null() && ct->dump().find("<|im_start|>") == std::string::npos)
      fail("%s: chat_template is not ChatML (no <|im_start|>): razor renders chat data only with ChatML "
           "(<|im_start|>role\\ncontent<|im_end|>\\n) and does not interpret other Jinja templates",
           cfg.c_str());
  }
  return t;
}

ChatTokens ChatTemplate::render(const Tokenizer& tok, const std::vector<ChatMessage>& messages) const {
  ChatTokens out;
  auto push = [&out](int32_t id, uint8_t m) {
    out.ids.push_back(id);
    out.mask.push_back(m);
  };
  for (const ChatMessage& msg : messages) {
    const uint8_t target = msg.role == "assistant";
    push(im_start_, 0);
    // "ROLE\nCONTENT" is one section of the whole text's encoding (the special tokens cut it);
    // its tokens past the encoding of "ROLE\n" alone are the content's.
    const std::vector<int32_t> head = tok.encode(msg.role + "\n");
    const std::vector<int32_t> seg = tok.encode(msg.role + "\n" + msg.content);
    size_t k = 0;
    while (k < head.size() && k < seg.size() && head[k] == seg[k]) ++k;
    for (size_t i = 0; i < seg.size(); ++i) push(seg[i], i >= k ? target : 0);
    push(im_end_, target);
    for (int32_t id : tok.encode("\n")) push(id, 0);
  }
  return out;
}

bool chat_record_held_out(std::string_view line) { return fnv1a64(line.data(), line.size()) % 20 == 0; }

}  // namespace razor
