// Chat / instruction data: JSON-lines records rendered with the ChatML template into token
// ids and a loss mask that marks only the assistant's tokens.
//
// A record (one JSON object per line; blank lines are skipped) is either
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
// or {"prompt": "...", "response": "..."} (optionally "system": "..."), which is the two-turn
// conversation user → assistant. Other keys are ignored.
//
// Template: ChatML as Qwen (and generate --chat) writes it, every message
//   <|im_start|>ROLE\nCONTENT<|im_end|>\n
// with no default system prompt and nothing added to the content (Qwen3's template would
// insert an empty <think></think> block before the last assistant turn; razor does not).
// tokenizer_config.json's Jinja chat_template is not interpreted: razor only checks that it
// is ChatML (mentions <|im_start|>) and refuses any other template, as it refuses a tokenizer
// without the <|im_start|> / <|im_end|> tokens.
//
// Ids: exactly the tokenizer's encoding of the whole rendered text (the special tokens cut it
// into sections, so each message is encoded as "ROLE\nCONTENT" and "\n"). Mask: 1 on an
// assistant message's content tokens and its <|im_end|>, 0 on everything else (<|im_start|>,
// role, the "\n" after it and after <|im_end|>, system and user messages). Should the
// tokenizer merge the "\n" after the role with the content's first bytes into one token, that
// token counts as response.
// Deliberately not here: shards, padding to a sequence length (train/shards.h), the loss.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/tokenizer.h"

namespace razor {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

// Parses one record; errors are `where: what is wrong` (where = "FILE:LINE").
std::vector<ChatMessage> parse_chat_record(std::string_view line, const std::string& where);

// The ChatML text of a record (what the ids encode).
std::string render_chatml(const std::vector<ChatMessage>& messages);

struct ChatTokens {
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;  // [ids.size()], 1 = assistant token (a training target)
};

class ChatTemplate {
 public:
  // The template for a tokenizer: fails naming tokenizer_path when it lacks <|im_start|> /
  // <|im_end|>, or when tokenizer_config.json beside it has a chat_template that is not ChatML.
  static ChatTemplate for_tokenizer(const Tokenizer& tok, const std::string& tokenizer_path);
  ChatTokens render(const Tokenizer& tok, const std::vector<ChatMessage>& messages) const;

 private:
  int32_t im_start_ = -1, im_end_ = -1;
};

// Held out for validation when fnv1a64(line) % 20 == 0 (about 5%; deterministic).
bool chat_record_held_out(std::string_view line);

}  // namespace razor
