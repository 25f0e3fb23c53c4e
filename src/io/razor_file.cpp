#include "io/razor_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "core/error.h"
#include "core/util.h"

namespace razor {

static const char kMagic[8] = {'R', 'A', 'Z', 'O', 'R', 'P', 'K', '1'};
static const uint32_t kVersion = 1;

void RazorFileWriter::set(const std::string& key, Json value) {
  RZ_ASSERT(key != "tensors");
  sections_.set(key, std::move(value));
}

void RazorFileWriter::add(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape,
                          const void* data, size_t nbytes, Json extra) {
  Blob b;
  b.name = name;
  b.dtype = dtype;
  b.shape = shape;
  b.bytes.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + nbytes);
  b.extra = std::move(extra);
  blobs_.push_back(std::move(b));
}

static void put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
static uint64_t get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

void RazorFileWriter::write(const std::string& path) const {
  Json h = sections_;
  Json list = Json::array();
  uint64_t off = 0;
  std::vector<uint64_t> offsets;
  for (const Blob& b : blobs_) {
    Json e = b.extra.is_object() ? b.extra : Json::object();
    e.set("name", b.name);
    e.set("dtype", b.dtype);
    Json sh = Json::array();
    for (int64_t d : b.shape) sh.push_back(Json(d));
    e.set("shape", sh);
    e.set("offset", Json(int64_t(off)));
    e.set("nbytes", Json(int64_t(b.bytes.size())));
    list.push_back(e);
    offsets.push_back(off);
    off = align_up<uint64_t>(off + b.bytes.size(), 64);
  }
  h.set("tensors", list);
  std::string js = h.dump();
  uint64_t data_offset = align_up<uint64_t>(64 + js.size(), 64);
  uint64_t data_len = off;

  std::vector<uint8_t> data(data_len, 0);
  for (size_t i = 0; i < blobs_.size(); ++i)
    if (!blobs_[i].bytes.empty()) std::memcpy(data.data() + offsets[i], blobs_[i].bytes.data(), blobs_[i].bytes.size());

  uint8_t head[64] = {0};
  std::memcpy(head, kMagic, 8);
  std::memcpy(head + 8, &kVersion, 4);
  put64(head + 16, js.size());
  put64(head + 24, data_offset);
  put64(head + 32, data_len);
  put64(head + 40, hash64(js.data(), js.size()));
  put64(head + 48, hash64(data.data(), data.size()));
  put64(head + 56, hash64(head, 56));

  std::string out;
  out.reserve(size_t(data_offset + data_len));
  out.append(reinterpret_cast<const char*>(head), 64);
  out += js;
  out.append(size_t(data_offset - 64 - js.size()), '\0');
  out.append(reinterpret_cast<const char*>(data.data()), data.size());
  write_file_atomic(path, out);
}

RazorFile RazorFile::open(const std::string& path, bool verify_data) {
  RazorFile r;
  r.file_ = MappedFile::open(path);
  const uint8_t* p = r.file_->data();
  uint64_t size = r.file_->size();
  if (size < 64) fail("%s: not a .razor file (only %llu bytes; truncated?)", path.c_str(), (unsigned long long)size);
  if (std::memcmp(p, kMagic, 8) != 0) fail("%s: not a .razor file (bad magic)", path.c_str());
  uint32_t version;
  std::memcpy(&version, p + 8, 4);
  if (version != kVersion)
    fail("%s: .razor version %u is not supported (this razor reads version %u)", path.c_str(), version, kVersion);
  if (get64(p + 56) != hash64(p, 56)) fail("%s: corrupted .razor header (checksum mismatch)", path.c_str());
  uint64_t json_len = get64(p + 16), data_offset = get64(p + 24), data_len = get64(p + 32);
  if (json_len > size - 64 || data_offset < 64 + json_len || data_offset > size || data_len > size - data_offset)
    fail("%s: truncated or corrupted .razor file (header says %llu JSON bytes and %llu data bytes at offset %llu; "
         "file has %llu bytes)",
         path.c_str(), (unsigned long long)json_len, (unsigned long long)data_len, (unsigned long long)data_offset,
         (unsigned long long)size);
  if (get64(p + 40) != hash64(p + 64, json_len)) fail("%s: corrupted .razor JSON header (checksum mismatch)", path.c_str());
  if (verify_data && get64(p + 48) != hash64(p + data_offset, data_len))
    fail("%s: corrupted .razor tensor data (checksum mismatch)", path.c_str());
  r.data_offset_ = data_offset;
  r.header_ = Json::parse(std::string_view(reinterpret_cast<const char*>(p + 64), json_len), path + " header");
  if (!r.header_.is_object()) fail("%s: header is not a JSON object", path.c_str());
  const Json& list = r.header_.at("tensors", (path + " header").c_str());
  if (!list.is_array()) fail("%s: header field 'tensors' is not an array", path.c_str());
  for (const Json& e : list.items()) {
    RazorTensor t;
    std::string what = path + ": tensor entry";
    t.name = e.at("name", what.c_str()).as_string(what.c_str());
    what = path + ": tensor '" + t.name + "'";
    t.dtype = e.at("dtype", what.c_str()).as_string((what + " dtype").c_str());
    const Json& sh = e.at("shape", what.c_str());
    if (!sh.is_array() || sh.size() > 8) fail("%s: bad shape", what.c_str());
    for (const Json& d : sh.items()) {
      int64_t v = d.as_int((what + " shape").c_str());
      if (v < 0) fail("%s: negative dimension", what.c_str());
      t.shape.push_back(v);
    }
    int64_t o = e.at("offset", what.c_str()).as_int((what + " offset").c_str());
    int64_t n = e.at("nbytes", what.c_str()).as_int((what + " nbytes").c_str());
    if (o < 0 || n < 0 || uint64_t(o) > data_len || uint64_t(n) > data_len - uint64_t(o))
      fail("%s: data range [%lld, +%lld) outside the data region (%llu bytes)", what.c_str(), (long long)o,
           (long long)n, (unsigned long long)data_len);
    if (o % 64 != 0) fail("%s: offset %lld is not 64-byte aligned", what.c_str(), (long long)o);
    t.offset = uint64_t(o);
    t.nbytes = uint64_t(n);
    t.meta = e;
    r.tensors_.push_back(std::move(t));
  }
  return r;
}

const RazorTensor* RazorFile::find(const std::string& name) const {
  for (const RazorTensor& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const RazorTensor& RazorFile::get(const std::string& name, const std::string& dtype, uint64_t nbytes) const {
  const RazorTensor* t = find(name);
  if (!t) fail("%s: tensor '%s' is missing", path().c_str(), name.c_str());
  if (t->dtype != dtype)
    fail("%s: tensor '%s' has dtype %s, expected %s", path().c_str(), name.c_str(), t->dtype.c_str(), dtype.c_str());
  if (t->nbytes != nbytes)
    fail("%s: tensor '%s' has %llu bytes, expected %llu", path().c_str(), name.c_str(), (unsigned long long)t->nbytes,
         (unsigned long long)nbytes);
  return *t;
}

}  // namespace razor
