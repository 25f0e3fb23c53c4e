#include "io/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace razor {

Json::Json(double v) : type_(Type::Number), num_(v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.2e18) {
    int_ = int64_t(v);
    is_int_ = true;
  }
}

static const char* type_name(Json::Type t) {
  switch (t) {
    case Json::Type::Null: return "null";
    case Json::Type::Bool: return "a boolean";
    case Json::Type::Number: return "a number";
    case Json::Type::String: return "a string";
    case Json::Type::Array: return "an array";
    case Json::Type::Object: return "an object";
  }
  return "?";
}

bool Json::as_bool(const char* what) const {
  if (type_ != Type::Bool) fail("%s: expected a boolean, found %s", what, type_name(type_));
  return b_;
}
double Json::as_double(const char* what) const {
  if (type_ != Type::Number) fail("%s: expected a number, found %s", what, type_name(type_));
  return num_;
}
int64_t Json::as_int(const char* what) const {
  if (type_ != Type::Number || !is_int_) fail("%s: expected an integer, found %s", what,
                                               type_ == Type::Number ? "a fractional number" : type_name(type_));
  return int_;
}
const std::string& Json::as_string(const char* what) const {
  if (type_ != Type::String) fail("%s: expected a string, found %s", what, type_name(type_));
  return str_;
}

size_t Json::size() const { return type_ == Type::Object ? obj_.size() : arr_.size(); }

const Json* Json::find(std::string_view key) const {
  if (type_ != Type::Object) return nullptr;
  for (auto& kv : obj_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const Json& Json::at(std::string_view key, const char* what) const {
  const Json* j = find(key);
  if (!j) fail("%s: missing key '%.*s'", what, int(key.size()), key.data());
  return *j;
}

Json& Json::set(std::string key, Json v) {
  if (type_ == Type::Null) type_ = Type::Object;
  RZ_ASSERT(type_ == Type::Object);
  for (auto& kv : obj_)
    if (kv.first == key) {
      kv.second = std::move(v);
      return kv.second;
    }
  obj_.emplace_back(std::move(key), std::move(v));
  return obj_.back().second;
}

int64_t Json::get_int(std::string_view key, int64_t def) const {
  const Json* j = find(key);
  return (j && !j->is_null()) ? j->as_int(std::string(key).c_str()) : def;
}
double Json::get_double(std::string_view key, double def) const {
  const Json* j = find(key);
  return (j && !j->is_null()) ? j->as_double(std::string(key).c_str()) : def;
}
bool Json::get_bool(std::string_view key, bool def) const {
  const Json* j = find(key);
  return (j && !j->is_null()) ? j->as_bool(std::string(key).c_str()) : def;
}
std::string Json::get_string(std::string_view key, const std::string& def) const {
  const Json* j = find(key);
  return (j && !j->is_null()) ? j->as_string(std::string(key).c_str()) : def;
}

// ---------------------------------------------------------------------------------------
// Parser

namespace {

struct Parser {
  std::string_view s;
  size_t i = 0;
  const std::string& source;
  int depth = 0;

  [[noreturn]] void error(const char* msg) {
    size_t line = 1, col = 1;
    for (size_t k = 0; k < i && k < s.size(); ++k) {
      if (s[k] == '\n') ++line, col = 1;
      else ++col;
    }
    fail("%s: invalid JSON at line %zu, column %zu: %s", source.c_str(), line, col, msg);
  }

  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }

  Json value() {
    ws();
    if (i >= s.size()) error("unexpected end of input");
    if (++depth > 512) error("nesting deeper than 512 levels");
    Json out;
    char c = s[i];
    if (c == '{') out = object();
    else if (c == '[') out = array();
    else if (c == '"') out = Json(string());
    else if (c == 't') { lit("true"); out = Json(true); }
    else if (c == 'f') { lit("false"); out = Json(false); }
    else if (c == 'n') { lit("null"); out = Json(); }
    else if (c == '-' || (c >= '0' && c <= '9')) out = number();
    else error("unexpected character");
    --depth;
    return out;
  }

  void lit(const char* w) {
    size_t n = std::strlen(w);
    if (s.substr(i, n) != w) error("invalid literal");
    i += n;
  }

  Json number() {
    size_t start = i;
    bool integral = true;
    if (s[i] == '-') ++i;
    if (i >= s.size()) error("truncated number");
    if (s[i] == '0') ++i;
    else if (s[i] >= '1' && s[i] <= '9') while (i < s.size() && isdigit((unsigned char)s[i])) ++i;
    else error("invalid number");
    if (i < s.size() && s[i] == '.') {
      integral = false;
      ++i;
      if (i >= s.size() || !isdigit((unsigned char)s[i])) error("invalid number: digit expected after '.'");
      while (i < s.size() && isdigit((unsigned char)s[i])) ++i;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      integral = false;
      ++i;
      if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
      if (i >= s.size() || !isdigit((unsigned char)s[i])) error("invalid number: digit expected in exponent");
      while (i < s.size() && isdigit((unsigned char)s[i])) ++i;
    }
    std::string tok(s.substr(start, i - start));
    if (integral) {
      errno = 0;
      long long v = std::strtoll(tok.c_str(), nullptr, 10);
      if (errno == 0) return Json(int64_t(v));
    }
    return Json(std::strtod(tok.c_str(), nullptr));
  }

  unsigned hex4() {
    if (i + 4 > s.size()) error("truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[i++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
      else error("invalid hex digit in \\u escape");
    }
    return v;
  }

  static void utf8(std::string& o, unsigned cp) {
    if (cp < 0x80) o += char(cp);
    else if (cp < 0x800) { o += char(0xC0 | (cp >> 6)); o += char(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) { o += char(0xE0 | (cp >> 12)); o += char(0x80 | ((cp >> 6) & 0x3F)); o += char(0x80 | (cp & 0x3F)); }
    else { o += char(0xF0 | (cp >> 18)); o += char(0x80 | ((cp >> 12) & 0x3F)); o += char(0x80 | ((cp >> 6) & 0x3F)); o += char(0x80 | (cp & 0x3F)); }
  }

  // Validates one UTF-8 sequence starting at s[i] and appends it.
  void raw_utf8(std::string& o) {
    unsigned char c = (unsigned char)s[i];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + size_t(n) > s.size()) error("invalid UTF-8 in string");
    unsigned cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < n; ++k) {
      unsigned char d = (unsigned char)s[i + size_t(k)];
      if ((d & 0xC0) != 0x80) error("invalid UTF-8 in string");
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      error("invalid UTF-8 in string");
    o.append(s.data() + i, size_t(n));
    i += size_t(n);
  }

  std::string string() {
    ++i;  // opening quote
    std::string o;
    for (;;) {
      if (i >= s.size()) error("unterminated string");
      char c = s[i];
      if (c == '"') { ++i; return o; }
      if ((unsigned char)c < 0x20) error("control character in string");
      if (c != '\\') {
        if ((unsigned char)c < 0x80) { o += c; ++i; }
        else raw_utf8(o);
        continue;
      }
      ++i;
      if (i >= s.size()) error("truncated escape");
      char e = s[i++];
      switch (e) {
        case '"': o += '"'; break;
        case '\\': o += '\\'; break;
        case '/': o += '/'; break;
        case 'b': o += '\b'; break;
        case 'f': o += '\f'; break;
        case 'n': o += '\n'; break;
        case 'r': o += '\r'; break;
        case 't': o += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 6 <= s.size() && s[i] == '\\' && s[i + 1] == 'u') {
              i += 2;
              unsigned lo = hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) error("unpaired surrogate in \\u escape");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              error("unpaired surrogate in \\u escape");
            }
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            error("unpaired surrogate in \\u escape");
          }
          utf8(o, cp);
          break;
        }
        default: error("invalid escape");
      }
    }
  }

  Json array() {
    ++i;
    Json a = Json::array();
    ws();
    if (i < s.size() && s[i] == ']') { ++i; return a; }
    for (;;) {
      a.push_back(value());
      ws();
      if (i >= s.size()) error("unterminated array");
      if (s[i] == ',') { ++i; continue; }
      if (s[i] == ']') { ++i; return a; }
      error("expected ',' or ']'");
    }
  }

  Json object() {
    ++i;
    Json o = Json::object();
    ws();
    if (i < s.size() && s[i] == '}') { ++i; return o; }
    for (;;) {
      ws();
      if (i >= s.size() || s[i] != '"') error("expected a string key");
      std::string k = string();
      ws();
      if (i >= s.size() || s[i] != ':') error("expected ':'");
      ++i;
      o.set_unchecked(std::move(k), value());
      ws();
      if (i >= s.size()) error("unterminated object");
      if (s[i] == ',') { ++i; continue; }
      if (s[i] == '}') { ++i; return o; }
      error("expected ',' or '}'");
    }
  }
};

}  // namespace

Json Json::parse(std::string_view text, const std::string& source) {
  Parser p{text, 0, source};
  Json v = p.value();
  p.ws();
  if (p.i != text.size()) p.error("trailing characters after the JSON value");
  return v;
}

// ---------------------------------------------------------------------------------------
// Writer

void json_escape(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

void Json::dump_to(std::string& out, int indent, int level) const {
  auto nl = [&](int lv) {
    if (indent < 0) return;
    out += '\n';
    out.append(size_t(indent * lv), ' ');
  };
  switch (type_) {
    case Type::Null: out += "null"; break;
    case Type::Bool: out += b_ ? "true" : "false"; break;
    case Type::Number: {
      if (is_int_) {
        out += std::to_string(int_);
      } else if (!std::isfinite(num_)) {
        out += "null";  // JSON has no inf/nan
      } else {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", num_);
        // Prefer the shortest representation that round-trips.
        for (int prec = 6; prec <= 17; ++prec) {
          char b2[40];
          std::snprintf(b2, sizeof b2, "%.*g", prec, num_);
          if (std::strtod(b2, nullptr) == num_) { std::strcpy(buf, b2); break; }
        }
        out += buf;
      }
      break;
    }
    case Type::String: json_escape(out, str_); break;
    case Type::Array: {
      out += '[';
      for (size_t k = 0; k < arr_.size(); ++k) {
        if (k) out += ',';
        nl(level + 1);
        arr_[k].dump_to(out, indent, level + 1);
      }
      if (!arr_.empty()) nl(level);
      out += ']';
      break;
    }
    case Type::Object: {
      out += '{';
      for (size_t k = 0; k < obj_.size(); ++k) {
        if (k) out += ',';
        nl(level + 1);
        json_escape(out, obj_[k].first);
        out += indent < 0 ? ":" : ": ";
        obj_[k].second.dump_to(out, indent, level + 1);
      }
      if (!obj_.empty()) nl(level);
      out += '}';
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

}  // namespace razor
