#include "gguf/gguf.h"

#include "io/file_util.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <unordered_set>

#include "core/error.h"
#include "core/util.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF I/O assumes a little-endian host");

namespace razor {

namespace {

const uint32_t kMagic = 0x46554747u;  // "GGUF" read as a little-endian u32
const uint32_t kVersion = 3;
const uint32_t kMaxDims = 4;          // GGML_MAX_DIMS
const size_t kMaxTensorName = 63;     // GGML_MAX_NAME - 1 (room for the terminator)

struct TypeRow {
  uint32_t id;
  const char* name;
  int64_t block_elems, block_bytes;
};
// Byte sizes of the ggml types that appear in files (GGUF spec / gguf-py GGML_QUANT_SIZES).
const TypeRow kTypes[] = {
    {0, "F32", 1, 4},          {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},     {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},       {7, "Q5_1", 32, 24},      {8, "Q8_0", 32, 34},     {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},     {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},  {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},    {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98},  {19, "IQ1_S", 256, 50},   {20, "IQ4_NL", 32, 18},  {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},    {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},        {25, "I16", 1, 2},
    {26, "I32", 1, 4},         {27, "I64", 1, 8},        {28, "F64", 1, 8},       {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},        {34, "TQ1_0", 256, 54},   {35, "TQ2_0", 256, 66},  {39, "MXFP4", 32, 17},
};

const TypeRow* find_type(uint32_t id) {
  for (const TypeRow& r : kTypes)
    if (r.id == id) return &r;
  return nullptr;
}

// Fixed byte size of a scalar value type; 0 for string / array.
size_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64: return 8;
    default: return 0;
  }
}
bool is_known_value_type(uint32_t t) { return t <= 12; }
bool is_int_type(GgufValueType t) {
  return t != GgufValueType::kFloat32 && t != GgufValueType::kFloat64 && scalar_size(t) != 0;
}
bool is_float_type(GgufValueType t) { return t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64; }


// ---- serialization
struct Out {
  std::vector<uint8_t> b;
  void raw(const void* p, size_t n) { b.insert(b.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n); }
  template <class T>
  void put(T v) { raw(&v, sizeof v); }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    raw(s.data(), s.size());
  }
};

void put_int(Out& o, GgufValueType t, uint64_t bits) {
  switch (scalar_size(t)) {
    case 1: o.put<uint8_t>(uint8_t(bits)); break;
    case 2: o.put<uint16_t>(uint16_t(bits)); break;
    case 4: o.put<uint32_t>(uint32_t(bits)); break;
    default: o.put<uint64_t>(bits); break;
  }
}
void put_float(Out& o, GgufValueType t, double v) {
  if (t == GgufValueType::kFloat32) o.put<float>(float(v));
  else o.put<double>(v);
}

void put_value(Out& o, const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::kString: o.str(v.s); break;
    case GgufValueType::kFloat32:
    case GgufValueType::kFloat64: put_float(o, v.type, v.f); break;
    case GgufValueType::kInt8:
    case GgufValueType::kInt16:
    case GgufValueType::kInt32:
    case GgufValueType::kInt64: put_int(o, v.type, uint64_t(v.i)); break;
    case GgufValueType::kArray:
      o.put<uint32_t>(uint32_t(v.array_type));
      o.put<uint64_t>(v.array_size());
      if (v.array_type == GgufValueType::kString)
        for (const std::string& s : v.strings) o.str(s);
      else if (is_float_type(v.array_type))
        for (double x : v.floats) put_float(o, v.array_type, x);
      else
        for (int64_t x : v.ints) put_int(o, v.array_type, uint64_t(x));
      break;
    default: put_int(o, v.type, v.u); break;
  }
}

// ---- bounds-checked cursor over the file image
struct Cursor {
  const uint8_t* p;
  size_t size, pos = 0;
  const std::string& src;
  size_t remain() const { return size - pos; }
  void need(size_t n, const std::string& what) {
    if (n > remain())
      fail("%s: truncated GGUF file: %s needs %zu bytes at offset %zu, only %zu remain", src.c_str(), what.c_str(), n,
           pos, remain());
  }
  template <class T>
  T get(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
  std::string str(const std::string& what) {
    uint64_t n = get<uint64_t>(what + " (string length)");
    if (n > remain())
      fail("%s: %s: string length %llu exceeds the %zu bytes left in the file", src.c_str(), what.c_str(),
           (unsigned long long)n, remain());
    std::string s(reinterpret_cast<const char*>(p + pos), size_t(n));
    pos += size_t(n);
    return s;
  }
};

uint64_t get_int_bits(Cursor& c, GgufValueType t, const std::string& what) {
  switch (scalar_size(t)) {
    case 1: return c.get<uint8_t>(what);
    case 2: return c.get<uint16_t>(what);
    case 4: return c.get<uint32_t>(what);
    default: return c.get<uint64_t>(what);
  }
}
int64_t sign_extend(uint64_t bits, GgufValueType t) {
  switch (t) {
    case GgufValueType::kInt8: return int8_t(bits);
    case GgufValueType::kInt16: return int16_t(bits);
    case GgufValueType::kInt32: return int32_t(bits);
    case GgufValueType::kInt64: return int64_t(bits);
    default: return int64_t(bits);  // unsigned: kept as the bit pattern (u64 > 2^63 wraps)
  }
}
double get_float(Cursor& c, GgufValueType t, const std::string& what) {
  if (t == GgufValueType::kFloat32) return c.get<float>(what);
  return c.get<double>(what);
}

GgufValue read_value(Cursor& c, GgufValueType t, const std::string& what) {
  GgufValue v;
  v.type = t;
  if (t == GgufValueType::kString) {
    v.s = c.str(what);
  } else if (is_float_type(t)) {
    v.f = get_float(c, t, what);
  } else if (t == GgufValueType::kArray) {
    uint32_t et = c.get<uint32_t>(what + " (array type)");
    if (!is_known_value_type(et)) fail("%s: %s: unknown array element type %u", c.src.c_str(), what.c_str(), et);
    v.array_type = GgufValueType(et);
    if (v.array_type == GgufValueType::kArray)
      fail("%s: %s: nested arrays are not supported", c.src.c_str(), what.c_str());
    uint64_t n = c.get<uint64_t>(what + " (array length)");
    // Every element takes at least its fixed size (a string at least its 8-byte length), so
    // a count the remaining bytes cannot hold is rejected before anything is allocated.
    size_t min_elem = v.array_type == GgufValueType::kString ? 8 : scalar_size(v.array_type);
    if (n > c.remain() / min_elem)
      fail("%s: %s: array of %llu %s elements cannot fit in the %zu bytes left in the file", c.src.c_str(),
           what.c_str(), (unsigned long long)n, gguf_value_type_name(v.array_type), c.remain());
    if (v.array_type == GgufValueType::kString) {
      v.strings.reserve(size_t(n));
      for (uint64_t k = 0; k < n; ++k) v.strings.push_back(c.str(what));
    } else if (is_float_type(v.array_type)) {
      v.floats.reserve(size_t(n));
      for (uint64_t k = 0; k < n; ++k) v.floats.push_back(get_float(c, v.array_type, what));
    } else {
      v.ints.reserve(size_t(n));
      for (uint64_t k = 0; k < n; ++k) v.ints.push_back(sign_extend(get_int_bits(c, v.array_type, what), v.array_type));
    }
  } else {
    uint64_t bits = get_int_bits(c, t, what);
    if (t == GgufValueType::kBool && bits > 1)
      fail("%s: %s: bool value %llu is not 0 or 1", c.src.c_str(), what.c_str(), (unsigned long long)bits);
    if (t == GgufValueType::kInt8 || t == GgufValueType::kInt16 || t == GgufValueType::kInt32 ||
        t == GgufValueType::kInt64)
      v.i = sign_extend(bits, t);
    else
      v.u = bits;
  }
  return v;
}

}  // namespace

const char* gguf_value_type_name(GgufValueType t) {
  static const char* const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                      "bool", "str", "array", "u64", "i64", "f64"};
  uint32_t i = uint32_t(t);
  return i <= 12 ? names[i] : "unknown";
}

bool ggml_type_size(uint32_t type, int64_t* block_elems, int64_t* block_bytes) {
  const TypeRow* r = find_type(type);
  if (!r) return false;
  *block_elems = r->block_elems;
  *block_bytes = r->block_bytes;
  return true;
}

const char* ggml_type_name(uint32_t type) {
  const TypeRow* r = find_type(type);
  if (r) return r->name;
  static thread_local char buf[24];
  std::snprintf(buf, sizeof buf, "type#%u", type);
  return buf;
}

uint64_t ggml_nbytes(GgmlType type, const std::vector<int64_t>& ne) {
  int64_t be = 0, bb = 0;
  RZ_ASSERT(ggml_type_size(uint32_t(type), &be, &bb));
  RZ_ASSERT(!ne.empty() && ne[0] % be == 0);
  uint64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= uint64_t(ne[d]);
  return uint64_t(ne[0] / be) * uint64_t(bb) * rows;
}

// ---- GgufValue

#define RZ_GGUF_SCALAR(fn, T, field, tag) \
  GgufValue GgufValue::fn(T v) {          \
    GgufValue x;                          \
    x.type = GgufValueType::tag;          \
    x.field = v;                          \
    return x;                             \
  }
RZ_GGUF_SCALAR(u8, uint8_t, u, kUint8)
RZ_GGUF_SCALAR(i8, int8_t, i, kInt8)
RZ_GGUF_SCALAR(u16, uint16_t, u, kUint16)
RZ_GGUF_SCALAR(i16, int16_t, i, kInt16)
RZ_GGUF_SCALAR(u32, uint32_t, u, kUint32)
RZ_GGUF_SCALAR(i32, int32_t, i, kInt32)
RZ_GGUF_SCALAR(u64, uint64_t, u, kUint64)
RZ_GGUF_SCALAR(i64, int64_t, i, kInt64)
RZ_GGUF_SCALAR(f64, double, f, kFloat64)
#undef RZ_GGUF_SCALAR

GgufValue GgufValue::f32(float v) {
  GgufValue x;
  x.type = GgufValueType::kFloat32;
  x.f = double(v);
  return x;
}
GgufValue GgufValue::boolean(bool v) {
  GgufValue x;
  x.type = GgufValueType::kBool;
  x.u = v ? 1 : 0;
  return x;
}
GgufValue GgufValue::str(std::string v) {
  GgufValue x;
  x.type = GgufValueType::kString;
  x.s = std::move(v);
  return x;
}
// An empty array of elem; the three array_* constructors fill its one list.
static GgufValue empty_array(GgufValueType elem) {
  GgufValue x;
  x.type = GgufValueType::kArray;
  x.array_type = elem;
  return x;
}
GgufValue GgufValue::array_ints(GgufValueType elem, std::vector<int64_t> v) {
  RZ_ASSERT(is_int_type(elem));
  GgufValue x = empty_array(elem);
  x.ints = std::move(v);
  return x;
}
GgufValue GgufValue::array_floats(GgufValueType elem, std::vector<double> v) {
  RZ_ASSERT(is_float_type(elem));
  GgufValue x = empty_array(elem);
  x.floats = std::move(v);
  return x;
}
GgufValue GgufValue::array_strings(std::vector<std::string> v) {
  GgufValue x = empty_array(GgufValueType::kString);
  x.strings = std::move(v);
  return x;
}

uint64_t GgufValue::array_size() const {
  if (type != GgufValueType::kArray) return 0;
  if (array_type == GgufValueType::kString) return strings.size();
  if (is_float_type(array_type)) return floats.size();
  return ints.size();
}

bool GgufValue::operator==(const GgufValue& o) const {
  if (type != o.type) return false;
  switch (type) {
    case GgufValueType::kString: return s == o.s;
    case GgufValueType::kFloat32:
    case GgufValueType::kFloat64: return f == o.f;
    case GgufValueType::kInt8:
    case GgufValueType::kInt16:
    case GgufValueType::kInt32:
    case GgufValueType::kInt64: return i == o.i;
    case GgufValueType::kArray:
      return array_type == o.array_type && ints == o.ints && floats == o.floats && strings == o.strings;
    default: return u == o.u;
  }
}

std::string GgufValue::str_short() const {
  switch (type) {
    case GgufValueType::kString: {
      std::string t = s.size() > 60 ? s.substr(0, 57) + "..." : s;
      return "str \"" + t + "\"";
    }
    case GgufValueType::kFloat32:
    case GgufValueType::kFloat64: return strfmt("%s %g", gguf_value_type_name(type), f);
    case GgufValueType::kInt8:
    case GgufValueType::kInt16:
    case GgufValueType::kInt32:
    case GgufValueType::kInt64: return strfmt("%s %lld", gguf_value_type_name(type), (long long)i);
    case GgufValueType::kArray:
      return strfmt("array[%s] x %llu", gguf_value_type_name(array_type), (unsigned long long)array_size());
    case GgufValueType::kBool: return u ? "bool true" : "bool false";
    default: return strfmt("%s %llu", gguf_value_type_name(type), (unsigned long long)u);
  }
}

// ---- GgufWriter

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  RZ_ASSERT(alignment > 0 && (alignment & (alignment - 1)) == 0);
  if (alignment != 32) set("general.alignment", GgufValue::u32(alignment));
}

void GgufWriter::set(const std::string& key, GgufValue v) {
  RZ_ASSERT(!key.empty());
  RZ_ASSERT(v.type != GgufValueType::kArray || v.array_type != GgufValueType::kArray);
  for (auto& kv : kv_)
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

const GgufValue* GgufWriter::find(const std::string& key) const {
  for (const auto& kv : kv_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                            std::vector<uint8_t> bytes) {
  RZ_CHECK(!name.empty() && name.size() <= kMaxTensorName, "GGUF tensor '%s': name must be 1..%zu bytes", name.c_str(),
           kMaxTensorName);
  for (const Tensor& t : tensors_) RZ_CHECK(t.name != name, "GGUF tensor '%s': added twice", name.c_str());
  int64_t be = 0, bb = 0;
  RZ_ASSERT(ggml_type_size(uint32_t(type), &be, &bb));
  RZ_CHECK(!ne.empty() && ne.size() <= kMaxDims, "GGUF tensor '%s': %zu dims (1..4 allowed)", name.c_str(), ne.size());
  for (int64_t d : ne) RZ_CHECK(d >= 1, "GGUF tensor '%s': dimension %lld < 1", name.c_str(), (long long)d);
  RZ_CHECK(ne[0] % be == 0, "GGUF tensor '%s': row length %lld is not a multiple of the %s block (%lld)",
           name.c_str(), (long long)ne[0], ggml_type_name(type), (long long)be);
  RZ_ASSERT(bytes.size() == ggml_nbytes(type, ne));
  tensors_.push_back(Tensor{name, type, std::move(ne), std::move(bytes)});
}

std::vector<uint8_t> GgufWriter::header() const {
  Out o;
  o.put<uint32_t>(kMagic);
  o.put<uint32_t>(kVersion);
  o.put<uint64_t>(tensors_.size());
  o.put<uint64_t>(kv_.size());
  for (const auto& kv : kv_) {
    o.str(kv.first);
    o.put<uint32_t>(uint32_t(kv.second.type));
    put_value(o, kv.second);
  }
  uint64_t off = 0;
  for (const Tensor& t : tensors_) {
    o.str(t.name);
    o.put<uint32_t>(uint32_t(t.ne.size()));
    for (int64_t d : t.ne) o.put<uint64_t>(uint64_t(d));
    o.put<uint32_t>(uint32_t(t.type));
    o.put<uint64_t>(off);
    off = align_up<uint64_t>(off + t.bytes.size(), alignment_);
  }
  o.b.resize(align_up<uint64_t>(o.b.size(), alignment_), 0);
  return o.b;
}

std::vector<uint8_t> GgufWriter::serialize() const {
  std::vector<uint8_t> out = header();
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.bytes.begin(), t.bytes.end());
    out.resize(align_up<uint64_t>(out.size(), alignment_), 0);
  }
  return out;
}

void GgufWriter::write(const std::string& path) const {
  AtomicFile f(path);
  std::vector<uint8_t> head = header();
  f.write(head.data(), head.size());
  static const uint8_t zeros[64] = {0};
  for (const Tensor& t : tensors_) {
    f.write(t.bytes.data(), t.bytes.size());
    uint64_t pad = align_up<uint64_t>(t.bytes.size(), alignment_) - t.bytes.size();
    while (pad > 0) {
      size_t n = size_t(std::min<uint64_t>(pad, sizeof zeros));
      f.write(zeros, n);
      pad -= n;
    }
  }
  f.commit();
}

// ---- GgufFile

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

GgufFile GgufFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> m = MappedFile::open(path);
  return parse(m->data(), m->size(), path, m);
}

GgufFile GgufFile::parse(const uint8_t* data, size_t size, const std::string& source,
                         std::shared_ptr<const void> owner) {
  GgufFile f;
  f.source_ = source;
  f.owner_ = std::move(owner);
  const char* src = source.c_str();
  Cursor c{data, size, 0, f.source_};
  uint32_t magic = c.get<uint32_t>("magic");
  if (magic != kMagic) {
    char m[5] = {0};
    std::memcpy(m, &magic, 4);
    for (char& ch : m)
      if (ch && (ch < 32 || ch > 126)) ch = '?';
    fail("%s: not a GGUF file (magic '%s', expected 'GGUF')", src, m);
  }
  f.version_ = c.get<uint32_t>("version");
  if (f.version_ != kVersion)
    fail("%s: GGUF version %u is not supported (razor reads version 3)", src, f.version_);
  uint64_t n_tensors = c.get<uint64_t>("tensor count");
  uint64_t n_kv = c.get<uint64_t>("metadata count");
  // Minimum encoded sizes: a KV is key length (8) + type (4) + at least 1 byte; a tensor
  // info is name length (8) + n_dims (4) + type (4) + offset (8).
  if (n_kv > c.remain() / 13)
    fail("%s: metadata count %llu cannot fit in a %zu-byte file (corrupt header)", src, (unsigned long long)n_kv, size);
  if (n_tensors > c.remain() / 24)
    fail("%s: tensor count %llu cannot fit in a %zu-byte file (corrupt header)", src, (unsigned long long)n_tensors,
         size);

  f.kv_.reserve(size_t(n_kv));
  std::unordered_set<std::string> seen;  // duplicate checks stay linear on forged huge tables
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.str(strfmt("metadata key #%llu", (unsigned long long)k));
    if (key.empty()) fail("%s: metadata key #%llu is empty", src, (unsigned long long)k);
    if (!seen.insert(key).second) fail("%s: metadata key '%s' appears twice", src, key.c_str());
    std::string what = "key '" + key + "'";
    uint32_t t = c.get<uint32_t>(what + " (type)");
    if (!is_known_value_type(t)) fail("%s: %s: unknown value type %u", src, what.c_str(), t);
    f.kv_.emplace_back(key, read_value(c, GgufValueType(t), what));
  }

  if (const GgufValue* a = f.find("general.alignment")) {
    if (a->type != GgufValueType::kUint32)
      fail("%s: key 'general.alignment' is %s, expected u32", src, gguf_value_type_name(a->type));
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      fail("%s: key 'general.alignment' = %llu is not a power of two", src, (unsigned long long)a->u);
    f.alignment_ = uint32_t(a->u);
  }

  f.tensors_.reserve(size_t(n_tensors));
  seen.clear();
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo ti;
    ti.name = c.str(strfmt("tensor #%llu name", (unsigned long long)k));
    std::string what = "tensor '" + ti.name + "'";
    if (ti.name.empty() || ti.name.size() > kMaxTensorName)
      fail("%s: tensor #%llu: name length %zu not in 1..%zu", src, (unsigned long long)k, ti.name.size(),
           kMaxTensorName);
    uint32_t nd = c.get<uint32_t>(what + " (n_dims)");
    if (nd < 1 || nd > kMaxDims) fail("%s: %s: %u dimensions (1..4 allowed)", src, what.c_str(), nd);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      uint64_t n = c.get<uint64_t>(what + " (dims)");
      if (n == 0 || n > (uint64_t(1) << 62) / numel)
        fail("%s: %s: dimension %u = %llu is zero or makes the tensor impossibly large", src, what.c_str(), d,
             (unsigned long long)n);
      numel *= n;
      ti.ne.push_back(int64_t(n));
    }
    ti.type = c.get<uint32_t>(what + " (type)");
    int64_t be = 0, bb = 0;
    if (!ggml_type_size(ti.type, &be, &bb)) fail("%s: %s: unknown ggml type id %u", src, what.c_str(), ti.type);
    if (ti.ne[0] % be != 0)
      fail("%s: %s: row length %lld is not a multiple of the %s block size %lld", src, what.c_str(),
           (long long)ti.ne[0], ggml_type_name(ti.type), (long long)be);
    ti.nbytes = numel / uint64_t(be) * uint64_t(bb);  // numel < 2^62 and bb <= 292 / be: no overflow
    if (numel / uint64_t(be) > (uint64_t(1) << 62) / uint64_t(bb))
      fail("%s: %s: size overflows", src, what.c_str());
    ti.offset = c.get<uint64_t>(what + " (offset)");
    if (ti.offset % f.alignment_ != 0)
      fail("%s: %s: offset %llu is not a multiple of the alignment %u", src, what.c_str(),
           (unsigned long long)ti.offset, f.alignment_);
    if (!seen.insert(ti.name).second) fail("%s: tensor name '%s' appears twice", src, ti.name.c_str());
    f.tensors_.push_back(std::move(ti));
  }

  f.data_offset_ = align_up<uint64_t>(c.pos, f.alignment_);
  if (!f.tensors_.empty() && f.data_offset_ > size)
    fail("%s: truncated GGUF file: the data section would start at %llu, beyond the file size %zu", src,
         (unsigned long long)f.data_offset_, size);
  uint64_t data_len = size - std::min<uint64_t>(size, f.data_offset_);
  for (GgufTensorInfo& ti : f.tensors_) {
    if (ti.offset > data_len || ti.nbytes > data_len - ti.offset)
      fail("%s: tensor '%s': bytes [%llu, %llu) of the data section are beyond the end of the file (data section is "
           "%llu bytes; truncated or corrupt)",
           src, ti.name.c_str(), (unsigned long long)ti.offset, (unsigned long long)(ti.offset + ti.nbytes),
           (unsigned long long)data_len);
    ti.data = data + f.data_offset_ + ti.offset;
  }
  // Overlapping tensors mean a corrupt table (or a deliberate aliasing razor does not accept).
  std::vector<const GgufTensorInfo*> by_off;
  for (const GgufTensorInfo& ti : f.tensors_) by_off.push_back(&ti);
  std::sort(by_off.begin(), by_off.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_off.size(); ++k)
    if (by_off[k - 1]->offset + by_off[k - 1]->nbytes > by_off[k]->offset)
      fail("%s: tensors '%s' and '%s' overlap in the data section", src, by_off[k - 1]->name.c_str(),
           by_off[k]->name.c_str());
  return f;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  for (const auto& kv : kv_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const GgufValue& GgufFile::at(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) fail("%s: key '%s': missing", source_.c_str(), key.c_str());
  return *v;
}

static const GgufValue& typed(const GgufFile& f, const std::string& key, GgufValueType t) {
  const GgufValue& v = f.at(key);
  if (v.type != t)
    fail("%s: key '%s' is %s, expected %s", f.source().c_str(), key.c_str(), gguf_value_type_name(v.type),
         gguf_value_type_name(t));
  return v;
}
uint32_t GgufFile::get_u32(const std::string& key) const { return uint32_t(typed(*this, key, GgufValueType::kUint32).u); }
float GgufFile::get_f32(const std::string& key) const { return float(typed(*this, key, GgufValueType::kFloat32).f); }
const std::string& GgufFile::get_str(const std::string& key) const { return typed(*this, key, GgufValueType::kString).s; }
bool GgufFile::get_bool(const std::string& key) const { return typed(*this, key, GgufValueType::kBool).u != 0; }

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  for (const GgufTensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}
const GgufTensorInfo& GgufFile::tensor(const std::string& name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) fail("%s: tensor '%s': not in the file", source_.c_str(), name.c_str());
  return *t;
}

}  // namespace razor
