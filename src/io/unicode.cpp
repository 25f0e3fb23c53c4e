// Unicode tables lookups and NFC (UAX #15: decompose, order by combining class, compose).
#include "io/unicode.h"

#include <algorithm>
#include <vector>

namespace razor {

namespace {

struct CodeRange {
  uint32_t lo, hi;
};
struct CategoryRange {
  uint32_t lo, hi;
  uint8_t value;
};
struct Decomposition {
  uint32_t cp;
  uint16_t offset;
  uint8_t length;
};
struct Composition {
  uint32_t first, second, composite;
};

#include "io/unicode_tables.inc"

template <class R, size_t N>
const R* find_range(const R (&table)[N], uint32_t cp) {
  // First range whose hi >= cp; it holds cp when its lo <= cp.
  const R* it = std::lower_bound(table, table + N, cp, [](const R& r, uint32_t c) { return r.hi < c; });
  return (it != table + N && it->lo <= cp) ? it : nullptr;
}

// Hangul syllables (UAX #15 section 3.12): composed and decomposed arithmetically.
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

void decompose_into(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp - kSBase < kSCount) {
    uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition* end = kDecompositions + sizeof(kDecompositions) / sizeof(kDecompositions[0]);
  const Decomposition* d =
      std::lower_bound(kDecompositions, end, cp, [](const Decomposition& e, uint32_t c) { return e.cp < c; });
  if (d != end && d->cp == cp) {
    out.insert(out.end(), kDecompositionData + d->offset, kDecompositionData + d->offset + d->length);
  } else {
    out.push_back(cp);
  }
}

// The primary composite of (a, b), or 0.
uint32_t compose_pair(uint32_t a, uint32_t b) {
  if (a - kLBase < kLCount && b - kVBase < kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a - kSBase < kSCount && (a - kSBase) % kTCount == 0 && b - kTBase - 1 < kTCount - 1)
    return a + (b - kTBase);
  const Composition* end = kCompositions + sizeof(kCompositions) / sizeof(kCompositions[0]);
  const Composition* c = std::lower_bound(kCompositions, end, std::make_pair(a, b),
                                          [](const Composition& e, std::pair<uint32_t, uint32_t> k) {
                                            return e.first < k.first || (e.first == k.first && e.second < k.second);
                                          });
  return (c != end && c->first == a && c->second == b) ? c->composite : 0;
}

}  // namespace

const char* unicode_version() { return kUnicodeVersion; }

int32_t utf8_next(std::string_view s, size_t& i) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  uint32_t c = p[i];
  if (c < 0x80) {
    i += 1;
    return int32_t(c);
  }
  int len;
  uint32_t cp, min;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2, cp = c & 0x1F, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3, cp = c & 0x0F, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4, cp = c & 0x07, min = 0x10000;
  } else {
    i += 1;
    return -1;
  }
  if (i + len > n) {
    i += 1;
    return -1;
  }
  for (int k = 1; k < len; ++k) {
    uint32_t b = p[i + k];
    if ((b & 0xC0) != 0x80) {
      i += 1;
      return -1;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    i += 1;
    return -1;
  }
  i += len;
  return int32_t(cp);
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

bool utf8_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();)
    if (utf8_next(s, i) < 0) return false;
  return true;
}

std::string utf8_sanitize(std::string_view s) {
  // Maximal subpart rule: a lead byte followed by the longest valid prefix of a sequence
  // becomes one U+FFFD; utf8_next already rejects at the lead, so extend over the
  // continuation bytes that could still have been valid.
  std::string out;
  out.reserve(s.size());
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    size_t j = i;
    int32_t cp = utf8_next(s, j);
    if (cp >= 0) {
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    uint32_t c = p[i];
    int len = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 1;
    size_t k = i + 1;
    for (int m = 1; m < len && k < s.size(); ++m, ++k) {
      uint32_t b = p[k];
      uint32_t lo = 0x80, hi = 0xBF;
      if (m == 1) {  // the second byte's range depends on the lead (Unicode Table 3-7)
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
      }
      if (b < lo || b > hi) break;
    }
    out += "\xEF\xBF\xBD";
    i = k;
  }
  return out;
}

CharClass char_class(uint32_t cp) {
  const CategoryRange* r = find_range(kCategoryRanges, cp);
  return r ? CharClass(r->value) : CharClass::Other;
}

bool is_white_space_slow(uint32_t cp) { return find_range(kWhiteSpaceRanges, cp) != nullptr; }

uint8_t combining_class(uint32_t cp) {
  if (cp < 0x300) return 0;
  const CategoryRange* r = find_range(kCombiningClassRanges, cp);
  return r ? r->value : 0;
}

bool nfc_quick_check(std::string_view s) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    int32_t cp = utf8_next(s, i);
    // Below U+0300 every code point is NFC_QC=Yes with combining class 0.
    if (cp >= 0x300 && find_range(kNfcUnsafeRanges, uint32_t(cp))) return false;
  }
  return true;
}

std::string nfc(std::string_view s) {
  if (nfc_quick_check(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 16);
  std::vector<uint32_t> d;
  size_t i = 0;
  auto flush = [&]() {
    if (d.empty()) return;
    // Canonical ordering: a stable sort of each run of non-starters by combining class.
    for (size_t a = 0; a < d.size();) {
      if (combining_class(d[a]) == 0) {
        ++a;
        continue;
      }
      size_t b = a;
      while (b < d.size() && combining_class(d[b]) != 0) ++b;
      std::stable_sort(d.begin() + a, d.begin() + b,
                       [](uint32_t x, uint32_t y) { return combining_class(x) < combining_class(y); });
      a = b;
    }
    // Composition (UAX #15 sample algorithm).
    size_t starter = 0, w = 1;
    uint32_t starter_cp = d[0];
    int last_class = combining_class(starter_cp) ? 256 : 0;
    for (size_t k = 1; k < d.size(); ++k) {
      uint32_t ch = d[k];
      int cls = combining_class(ch);
      uint32_t comp = compose_pair(starter_cp, ch);
      if (comp && (last_class < cls || last_class == 0)) {
        d[starter] = comp;
        starter_cp = comp;
        continue;
      }
      if (cls == 0) {
        starter = w;
        starter_cp = ch;
      }
      last_class = cls;
      d[w++] = ch;
    }
    for (size_t k = 0; k < w; ++k) utf8_append(out, d[k]);
    d.clear();
  };
  while (i < s.size()) {
    size_t start = i;
    int32_t cp = utf8_next(s, i);
    if (cp < 0) {  // invalid bytes pass through unchanged
      flush();
      out.append(s.data() + start, i - start);
      continue;
    }
    decompose_into(uint32_t(cp), d);
  }
  flush();
  return out;
}

}  // namespace razor
