// safetensors reader and writer; see safetensors.h for the format and what is validated.
#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_set>

#include "core/error.h"
#include "core/half.h"
#include "core/tensor.h"
#include "io/file_util.h"

namespace razor {

namespace {

struct DTypeRow {
  StDType t;
  const char* name;
  size_t size;
};
const DTypeRow kDTypes[] = {
    {StDType::BOOL, "BOOL", 1}, {StDType::U8, "U8", 1},   {StDType::I8, "I8", 1},
    {StDType::F8_E4M3, "F8_E4M3", 1}, {StDType::F8_E5M2, "F8_E5M2", 1}, {StDType::I16, "I16", 2},
    {StDType::U16, "U16", 2},   {StDType::F16, "F16", 2}, {StDType::BF16, "BF16", 2},
    {StDType::I32, "I32", 4},   {StDType::U32, "U32", 4}, {StDType::F32, "F32", 4},
    {StDType::F64, "F64", 8},   {StDType::I64, "I64", 8}, {StDType::U64, "U64", 8},
};

// A header larger than this is not a tensor table (the Python library uses the same cap).
constexpr uint64_t kMaxHeader = 100ull << 20;

}  // namespace

const char* st_dtype_name(StDType t) {
  for (const DTypeRow& r : kDTypes)
    if (r.t == t) return r.name;
  return "?";
}

size_t st_dtype_size(StDType t) {
  for (const DTypeRow& r : kDTypes)
    if (r.t == t) return r.size;
  return 0;
}

bool st_dtype_parse(const std::string& s, StDType* out) {
  for (const DTypeRow& r : kDTypes)
    if (s == r.name) {
      *out = r.t;
      return true;
    }
  return false;
}

int64_t StTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated not to overflow by the reader
  return n;
}

SafeTensorsReader::SafeTensorsReader(const std::string& path) : path_(path) {
  const char* p = path.c_str();
  map_ = MappedFile::open(path);
  const uint64_t fsize = map_->size();
  if (fsize < 8)
    fail("%s: truncated safetensors file (%llu bytes; the 8-byte header length is missing)", p,
         (unsigned long long)fsize);
  const uint8_t* base = map_->data();
  try {
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(base[i]) << (8 * i);  // little-endian on every host
    if (n > fsize - 8)
      fail("%s: header length %llu runs past the end of the file (%llu bytes): truncated or not a "
           "safetensors file",
           p, (unsigned long long)n, (unsigned long long)fsize);
    if (n > kMaxHeader) fail("%s: header length %llu is over the 100 MiB limit", p, (unsigned long long)n);
    if (n < 2 || base[8] != '{') fail("%s: header is not a JSON object: not a safetensors file", p);
    Json hdr = Json::parse(std::string_view(reinterpret_cast<const char*>(base + 8), size_t(n)), path + " (header)");
    if (!hdr.is_object()) fail("%s: header is not a JSON object", p);
    data_ = base + 8 + n;
    const uint64_t data_size = fsize - 8 - n;

    std::unordered_set<std::string> seen;
    for (const auto& [name, v] : hdr.members()) {
      if (name == "__metadata__") {
        metadata_ = v;
        continue;
      }
      const char* tn = name.c_str();
      if (!seen.insert(name).second) fail("%s: tensor '%s' is listed twice", p, tn);
      if (!v.is_object()) fail("%s: tensor '%s': entry is not an object", p, tn);
      StTensorInfo t;
      t.name = name;
      const Json* jd = v.find("dtype");
      const Json* js = v.find("shape");
      const Json* jo = v.find("data_offsets");
      if (!jd || !jd->is_string()) fail("%s: tensor '%s': missing or non-string 'dtype'", p, tn);
      if (!st_dtype_parse(jd->as_string(), &t.dtype))
        fail("%s: tensor '%s': unknown dtype '%s'", p, tn, jd->as_string().c_str());
      if (!js || !js->is_array()) fail("%s: tensor '%s': missing or non-array 'shape'", p, tn);
      if (!jo || !jo->is_array() || jo->size() != 2)
        fail("%s: tensor '%s': 'data_offsets' must be an array [begin, end]", p, tn);
      // Element count and byte size, overflow-checked: a huge count is an error, not a wrap.
      uint64_t count = 1;
      bool overflow = false;
      for (const Json& d : js->items()) {
        if (!d.is_int() || d.as_int() < 0)
          fail("%s: tensor '%s': shape entries must be non-negative integers", p, tn);
        t.shape.push_back(d.as_int());
        if (__builtin_mul_overflow(count, uint64_t(d.as_int()), &count)) overflow = true;
      }
      uint64_t bytes = 0;
      if (overflow || __builtin_mul_overflow(count, uint64_t(st_dtype_size(t.dtype)), &bytes) ||
          bytes > uint64_t(INT64_MAX))
        fail("%s: tensor '%s': shape %s has an element count too large for any file", p, tn,
             shape_str(t.shape).c_str());
      for (int i = 0; i < 2; ++i)
        if (!(*jo)[size_t(i)].is_int() || (*jo)[size_t(i)].as_int() < 0)
          fail("%s: tensor '%s': data_offsets must be non-negative integers", p, tn);
      t.begin = uint64_t((*jo)[0].as_int());
      t.end = uint64_t((*jo)[1].as_int());
      if (t.begin > t.end)
        fail("%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", p, tn,
             (unsigned long long)t.begin, (unsigned long long)t.end);
      if (t.end > data_size)
        fail("%s: tensor '%s': data_offsets [%llu, %llu] run past the data region (%llu bytes): "
             "truncated file or bad offsets",
             p, tn, (unsigned long long)t.begin, (unsigned long long)t.end, (unsigned long long)data_size);
      if (t.end - t.begin != bytes)
        fail("%s: tensor '%s': %s %s needs %llu bytes but data_offsets [%llu, %llu] span %llu", p, tn,
             st_dtype_name(t.dtype), shape_str(t.shape).c_str(), (unsigned long long)bytes,
             (unsigned long long)t.begin, (unsigned long long)t.end, (unsigned long long)(t.end - t.begin));
      tensors_.push_back(std::move(t));
    }
    // No two tensors may share bytes.
    std::vector<const StTensorInfo*> order;
    for (const StTensorInfo& t : tensors_)
      if (t.end > t.begin) order.push_back(&t);
    std::sort(order.begin(), order.end(),
              [](const StTensorInfo* a, const StTensorInfo* b) { return a->begin < b->begin; });
    for (size_t i = 1; i < order.size(); ++i)
      if (order[i]->begin < order[i - 1]->end)
        fail("%s: tensors '%s' and '%s' overlap (data_offsets [%llu, %llu] and [%llu, %llu])", p,
             order[i - 1]->name.c_str(), order[i]->name.c_str(), (unsigned long long)order[i - 1]->begin,
             (unsigned long long)order[i - 1]->end, (unsigned long long)order[i]->begin,
             (unsigned long long)order[i]->end);
  } catch (...) {
    map_.reset();
    throw;
  }
}

SafeTensorsReader::~SafeTensorsReader() = default;

const StTensorInfo* SafeTensorsReader::find(const std::string& name) const {
  for (const StTensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

void SafeTensorsReader::convert(const StTensorInfo& t, float* dst) const {
  const uint8_t* src = raw(t);
  const int64_t n = t.numel();
  switch (t.dtype) {
    case StDType::F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case StDType::F64:
      for (int64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, src + 8 * i, 8);
        dst[i] = float(d);
      }
      return;
    case StDType::F16:
    case StDType::BF16: {
      // Offsets need not be 2-byte aligned; convert through an aligned chunk.
      uint16_t buf[4096];
      for (int64_t i = 0; i < n; i += 4096) {
        int64_t m = std::min<int64_t>(4096, n - i);
        std::memcpy(buf, src + 2 * i, size_t(m) * 2);
        if (t.dtype == StDType::F16)
          f16_to_f32(buf, dst + i, m);
        else
          bf16_to_f32(buf, dst + i, m);
      }
      return;
    }
    default:
      fail("%s: tensor '%s': dtype %s cannot be read as floating point (F32, F16, BF16, F64)", path_.c_str(),
           t.name.c_str(), st_dtype_name(t.dtype));
  }
}

Tensor SafeTensorsReader::read(const std::string& name) const {
  const StTensorInfo* t = find(name);
  if (!t) fail("%s: no tensor named '%s'", path_.c_str(), name.c_str());
  if (t->shape.size() > size_t(kMaxDims))
    fail("%s: tensor '%s': %zu dims; razor reads at most %d", path_.c_str(), name.c_str(), t->shape.size(),
         kMaxDims);
  Tensor out = Tensor::empty(Shape(t->shape));
  convert(*t, out.data());
  return out;
}

void SafeTensorsReader::read_into(const std::string& name, Tensor& dst) const {
  const StTensorInfo* t = find(name);
  if (!t) fail("%s: no tensor named '%s'", path_.c_str(), name.c_str());
  bool same = t->shape.size() == size_t(dst.dim());
  for (size_t i = 0; same && i < t->shape.size(); ++i) same = t->shape[i] == dst.size(int(i));
  if (!same)
    fail("%s: tensor '%s' has shape %s, expected %s", path_.c_str(), name.c_str(), shape_str(t->shape).c_str(),
         dst.shape_str().c_str());
  convert(*t, dst.data());
}

// ---- writer

void SafeTensorsWriter::add(const std::string& name, const Tensor& t, StDType dtype) {
  std::vector<int64_t> shape;
  for (int i = 0; i < t.dim(); ++i) shape.push_back(t.size(i));
  add_raw(name, t.data(), shape, dtype);
}

void SafeTensorsWriter::add_raw(const std::string& name, const float* data, const std::vector<int64_t>& shape,
                                StDType dtype) {
  if (dtype != StDType::F32 && dtype != StDType::BF16)
    fail("safetensors writer: tensor '%s': razor writes F32 or BF16, not %s", name.c_str(), st_dtype_name(dtype));
  if (name.empty() || name == "__metadata__") fail("safetensors writer: invalid tensor name '%s'", name.c_str());
  for (const Entry& e : entries_)
    if (e.name == name) fail("safetensors writer: tensor '%s' added twice", name.c_str());
  entries_.push_back({name, data, shape, dtype});
}

void SafeTensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  for (auto& kv : metadata_)
    if (kv.first == key) {
      kv.second = value;
      return;
    }
  metadata_.emplace_back(key, value);
}

void SafeTensorsWriter::write(const std::string& path) const {
  Json hdr = Json::object();
  if (!metadata_.empty()) {
    Json md = Json::object();
    for (const auto& kv : metadata_) md.set(kv.first, Json(kv.second));
    hdr.set("__metadata__", std::move(md));
  }
  uint64_t off = 0;
  for (const Entry& e : entries_) {
    uint64_t n = 1;
    for (int64_t d : e.shape) n *= uint64_t(d);
    uint64_t bytes = n * st_dtype_size(e.dtype);
    Json j = Json::object();
    j.set("dtype", Json(st_dtype_name(e.dtype)));
    Json s = Json::array();
    for (int64_t d : e.shape) s.push_back(Json(d));
    j.set("shape", std::move(s));
    Json o = Json::array();
    o.push_back(Json(int64_t(off)));
    o.push_back(Json(int64_t(off + bytes)));
    j.set("data_offsets", std::move(o));
    hdr.set(e.name, std::move(j));
    off += bytes;
  }
  std::string text = hdr.dump();
  // Pad with spaces so the data region starts at a 64-byte aligned file offset.
  while ((8 + text.size()) % 64 != 0) text.push_back(' ');

  AtomicFile f(path);
  uint8_t len[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(n >> (8 * i));
  f.write(len, 8);
  f.write(text.data(), text.size());
  std::vector<uint16_t> buf;
  for (const Entry& e : entries_) {
    int64_t count = 1;
    for (int64_t d : e.shape) count *= d;
    if (e.dtype == StDType::F32) {
      f.write(e.data, size_t(count) * 4);
    } else {
      const int64_t chunk = 1 << 16;
      buf.resize(size_t(chunk));
      for (int64_t i = 0; i < count; i += chunk) {
        int64_t m = std::min(chunk, count - i);
        f32_to_bf16(e.data + i, buf.data(), m);
        f.write(buf.data(), size_t(m) * 2);
      }
    }
  }
  f.commit();
}

}  // namespace razor
