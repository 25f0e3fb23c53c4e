// Model <-> Hugging Face checkpoint directory (config.json + model.safetensors, or sharded
// model.safetensors.index.json). Tensors of any float dtype are converted to f32 into the
// flat parameter buffer.
#include <sys/stat.h>

#include <map>
#include <memory>

#include "core/error.h"
#include "io/safetensors.h"
#include "nn/model.h"
#include "io/file_util.h"

#include "io/file_util.h"

namespace razor {

namespace {

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Names HF checkpoints may carry that hold no parameters razor needs.
bool ignorable(const std::string& name, bool tied) {
  if (tied && name == "lm_head.weight") return true;  // some tied checkpoints store the copy
  const std::string inv = "rotary_emb.inv_freq";       // buffers saved by old Llama code
  return name.size() >= inv.size() && name.compare(name.size() - inv.size(), inv.size(), inv) == 0;
}

std::string join_capped(const std::vector<std::string>& xs) {
  std::string s;
  const size_t cap = 12;
  for (size_t i = 0; i < xs.size() && i < cap; ++i) s += (i ? ", " : "") + xs[i];
  if (xs.size() > cap) s += strfmt(" and %zu more", xs.size() - cap);
  return s;
}

std::string shape_of(const StTensorInfo& t) {
  std::string r = "[";
  for (size_t i = 0; i < t.shape.size(); ++i) r += (i ? ", " : "") + std::to_string(t.shape[i]);
  return r + "]";
}

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& dir, bool trainable) {
  ModelConfig cfg = ModelConfig::load(dir + "/config.json");
  auto m = std::make_unique<Model>(cfg, trainable);

  std::vector<std::unique_ptr<SafeTensorsReader>> readers;
  std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  std::string where;  // names the source in errors
  if (file_exists(single)) {
    readers.push_back(std::make_unique<SafeTensorsReader>(single));
    where = single;
  } else if (file_exists(index)) {
    Json idx = Json::parse(read_file(index), index);
    const Json& map = idx.at("weight_map", index.c_str());
    if (!map.is_object()) fail("%s: weight_map is not an object", index.c_str());
    std::map<std::string, bool> files;
    for (const auto& kv : map.members()) {
      const std::string& f = kv.second.as_string((index + ": weight_map").c_str());
      if (f.find('/') != std::string::npos || f == ".." || f.empty())
        fail("%s: shard name '%s' must be a plain file name", index.c_str(), f.c_str());
      files[f] = true;
    }
    for (const auto& f : files) readers.push_back(std::make_unique<SafeTensorsReader>(dir + "/" + f.first));
    where = index;
  } else {
    fail("%s: no model.safetensors or model.safetensors.index.json", dir.c_str());
  }

  // Name -> (reader, info); a name in two shards is an error.
  std::map<std::string, std::pair<const SafeTensorsReader*, const StTensorInfo*>> stored;
  for (const auto& r : readers)
    for (const StTensorInfo& t : r->tensors()) {
      if (stored.count(t.name))
        fail("%s: tensor '%s' appears in %s and %s", where.c_str(), t.name.c_str(),
             stored[t.name].first->path().c_str(), r->path().c_str());
      stored[t.name] = {r.get(), &t};
    }

  std::vector<std::string> missing, extra, misshaped;
  for (const Param& p : m->entries) {
    auto it = stored.find(p.name);
    if (it == stored.end()) {
      missing.push_back(p.name);
      continue;
    }
    const StTensorInfo& t = *it->second.second;
    bool same = t.shape.size() == size_t(p.value.dim());
    for (size_t i = 0; same && i < t.shape.size(); ++i) same = t.shape[i] == p.value.size(int(i));
    if (!same) misshaped.push_back(p.name + " " + shape_of(t) + " (config.json implies " + p.value.shape_str() + ")");
  }
  for (const auto& kv : stored)
    if (!m->find(kv.first) && !ignorable(kv.first, cfg.tie_word_embeddings)) extra.push_back(kv.first);
  if (!missing.empty() || !extra.empty() || !misshaped.empty()) {
    std::string msg;
    if (!missing.empty()) msg += strfmt("; %zu missing tensors: ", missing.size()) + join_capped(missing);
    if (!misshaped.empty()) msg += strfmt("; %zu mis-shaped tensors: ", misshaped.size()) + join_capped(misshaped);
    if (!extra.empty()) msg += strfmt("; %zu unexpected tensors: ", extra.size()) + join_capped(extra);
    fail("%s: does not match config.json (%s, %lld layers%s)%s", where.c_str(), cfg.model_type.c_str(),
         (long long)cfg.num_hidden_layers, cfg.tie_word_embeddings ? ", tied embeddings" : "", msg.c_str());
  }
  for (Param& p : m->entries) {
    auto& src = stored[p.name];
    src.first->read_into(p.name, p.value);
  }
  return m;
}

void Model::save(const std::string& dir, bool bf16) const {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    make_dirs(dir);
  } else if (!S_ISDIR(st.st_mode)) {
    fail("%s: exists and is not a directory", dir.c_str());
  }
  SafeTensorsWriter w;
  for (const Param& p : entries) w.add(p.name, p.value, bf16 ? StDType::BF16 : StDType::F32);
  w.write(dir + "/model.safetensors");
  Json j = cfg.to_json();
  j.set("torch_dtype", Json(bf16 ? "bfloat16" : "float32"));
  cfg.validate(dir + "/config.json");
  write_file_atomic(dir + "/config.json", j.dump(2) + "\n");
}

}  // namespace razor
