// JSON: a small DOM, a strict parser (RFC 8259; \u escapes with surrogate pairs; UTF-8
// validated) and a writer. Objects keep insertion order (config.json and tokenizer.json
// are written back in the order they were read); lookup is linear, so callers iterate
// large objects (a 150k-entry vocabulary) instead of looking keys up one by one.
// Numbers keep both their double value and, when integral, an exact int64.
// Deliberately not here: schema knowledge of any particular file (io/hf_config, tokenizer).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/file_util.h"  // read_file, write_file_atomic

namespace razor {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Json() = default;
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::Bool), b_(b) {}
  Json(int v) : Json(int64_t(v)) {}
  Json(int64_t v) : type_(Type::Number), num_(double(v)), int_(v), is_int_(true) {}
  Json(uint64_t v) : Json(int64_t(v)) {}
  Json(double v);
  Json(const char* s) : type_(Type::String), str_(s) {}
  Json(std::string s) : type_(Type::String), str_(std::move(s)) {}
  static Json array() { Json j; j.type_ = Type::Array; return j; }
  static Json object() { Json j; j.type_ = Type::Object; return j; }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_int() const { return type_ == Type::Number && is_int_; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Typed access; throw razor::Error naming `what` (e.g. "config.json: hidden_size") on a
  // type mismatch.
  bool as_bool(const char* what = "value") const;
  double as_double(const char* what = "value") const;
  int64_t as_int(const char* what = "value") const;
  const std::string& as_string(const char* what = "value") const;

  // Arrays.
  size_t size() const;  // array or object element count
  const Json& operator[](size_t i) const { return arr_.at(i); }
  Json& push_back(Json v) { arr_.push_back(std::move(v)); return arr_.back(); }
  const std::vector<Json>& items() const { return arr_; }

  // Objects.
  const Json* find(std::string_view key) const;  // nullptr when absent
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Throws razor::Error "<what>: missing key '<key>'".
  const Json& at(std::string_view key, const char* what = "object") const;
  Json& set(std::string key, Json v);  // replaces an existing key in place
  const std::vector<std::pair<std::string, Json>>& members() const { return obj_; }
  // Appends without checking for a duplicate key (the parser: JSON allows duplicates,
  // and checking would make large objects quadratic). find() returns the first.
  void set_unchecked(std::string key, Json v) { type_ = Type::Object; obj_.emplace_back(std::move(key), std::move(v)); }

  // Convenience getters with defaults for optional fields.
  int64_t get_int(std::string_view key, int64_t def) const;
  double get_double(std::string_view key, double def) const;
  bool get_bool(std::string_view key, bool def) const;
  std::string get_string(std::string_view key, const std::string& def) const;

  // Parse; errors name `source` (a file name) with line and column.
  static Json parse(std::string_view text, const std::string& source = "json");
  // indent < 0: compact single line.
  std::string dump(int indent = -1) const;

 private:
  void dump_to(std::string& out, int indent, int level) const;
  Type type_ = Type::Null;
  bool b_ = false;
  double num_ = 0;
  int64_t int_ = 0;
  bool is_int_ = false;
  std::string str_;
  std::vector<Json> arr_;
  std::vector<std::pair<std::string, Json>> obj_;
};

// Appends s to out as a JSON string literal (quoted, escaped).
void json_escape(std::string& out, std::string_view s);

}  // namespace razor
