#include "core/model/checkpoint.h"

#include <c10/core/CPUAllocator.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/file_util.h"
#include "core/common/zip_archive.h"
#include "core/model/checkpoint_pickle.h"
#include "core/model/codebook.h"
#include "core/model/torch_status.h"
#include "yaml-cpp/yaml.h"

namespace qv2x {
namespace {

constexpr char kCodebookPrefix[] = "codebook.";
constexpr size_t kNamesShown = 6;

torch::Tensor TextTensor(const std::string& s) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  std::copy(s.begin(), s.end(), reinterpret_cast<char*>(t.data_ptr<uint8_t>()));
  return t;
}

absl::StatusOr<std::string> TensorText(const std::string& key, const torch::Tensor& t) {
  if (t.scalar_type() != torch::kUInt8 || t.dim() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint: metadata ", key, " is not a 1-D uint8 tensor"));
  }
  const torch::Tensor c = t.contiguous();
  const char* p = reinterpret_cast<const char*>(c.data_ptr<uint8_t>());
  return std::string(p, p + c.numel());
}

absl::StatusOr<int> TextInt(const std::string& key, const std::string& text) {
  int v = 0;
  if (!absl::SimpleAtoi(text, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint: metadata ", key, " is not an integer: \"", text, "\""));
  }
  return v;
}

std::string Shape(const torch::Tensor& t) { return c10::str(t.sizes()); }

// "a, b, c and 4 more"
std::string NameList(const std::vector<std::string>& names) {
  std::vector<std::string> shown(names.begin(),
                                 names.begin() + std::min(names.size(), kNamesShown));
  std::string out = absl::StrJoin(shown, ", ");
  if (names.size() > kNamesShown)
    absl::StrAppend(&out, " and ", names.size() - kNamesShown, " more");
  return out;
}

const CodebookImpl* FindCodebook(const torch::nn::Module& module) {
  for (const auto& item : module.named_modules()) {
    if (const auto* cb = item.value()->as<CodebookImpl>()) return cb;
  }
  return nullptr;
}

// Whether `t` lies inside its storage and the storage inside the record (of `record_bytes`
// bytes) it was read from.
absl::Status CheckTensorInRecord(const std::string& key, const torch::Tensor& t,
                                 size_t record_bytes) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", key, ": ", why));
  };
  const size_t stored = t.storage().nbytes();
  if (stored > record_bytes) {
    return bad(
        absl::StrCat("its storage claims ", stored, " bytes, its record holds ", record_bytes));
  }
  if (t.storage_offset() < 0) return bad("negative storage offset");
  // The last element's index in the storage; 128-bit so that no size or stride can wrap it.
  __int128 last = t.storage_offset();
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) < 0 || t.stride(d) < 0) return bad("negative size or stride");
    if (t.size(d) == 0) return absl::OkStatus();  // no element to reach
    last += static_cast<__int128>(t.size(d) - 1) * t.stride(d);
  }
  if ((last + 1) * static_cast<__int128>(t.element_size()) > static_cast<__int128>(stored)) {
    return bad(
        absl::StrCat("shape ", c10::str(t.sizes()), " reaches past its ", stored, " stored bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

const torch::Tensor* Checkpoint::Find(const std::string& name) const {
  for (const auto& [n, t] : tensors) {
    if (n == name) return &t;
  }
  return nullptr;
}

NamedTensors StateDict(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& item : module.named_modules()) {
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false)) {
      out.emplace_back(prefix + p.key(), p.value());
    }
    for (const auto& b : item.value()->named_buffers(/*recurse=*/false)) {
      out.emplace_back(prefix + b.key(), b.value());
    }
  }
  return out;
}

std::string CodebookDigestOf(const torch::nn::Module& module) {
  const CodebookImpl* cb = FindCodebook(module);
  return cb == nullptr ? "" : cb->Digest();
}

namespace {

c10::Dict<std::string, torch::Tensor> StateDictOf(const torch::nn::Module& module) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [name, t] : StateDict(module)) {
    dict.insert(name, t.detach().to(torch::kCPU).contiguous());
  }
  return dict;
}

std::string Pickled(const c10::Dict<std::string, torch::Tensor>& dict) {
  const std::vector<char> bytes = torch::pickle_save(torch::IValue(dict));
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

absl::StatusOr<std::string> SerializeStateDict(const torch::nn::Module& module) {
  return TorchCall("writing the state_dict",
                   [&]() -> absl::StatusOr<std::string> { return Pickled(StateDictOf(module)); });
}

absl::StatusOr<std::string> SerializeCheckpoint(const torch::nn::Module& module,
                                                CheckpointMeta meta) {
  return TorchCall("writing the checkpoint", [&]() -> absl::StatusOr<std::string> {
    meta.codebook_digest = CodebookDigestOf(module);
    c10::Dict<std::string, torch::Tensor> dict = StateDictOf(module);
    const std::string p = kCheckpointMetaPrefix;
    dict.insert(p + "format_version", TextTensor(std::to_string(meta.format_version)));
    dict.insert(p + "model", TextTensor(meta.model));
    dict.insert(p + "stage", TextTensor(std::to_string(meta.stage)));
    dict.insert(p + "epoch", TextTensor(std::to_string(meta.epoch)));
    dict.insert(p + "codebook_digest", TextTensor(meta.codebook_digest));
    dict.insert(p + "config_yaml", TextTensor(meta.config_yaml));
    return Pickled(dict);
  });
}

absl::StatusOr<torch::IValue> UnpickleArchive(const std::string& bytes, const std::string& what) {
  absl::StatusOr<ArchiveRecords> records = ReadArchiveRecords(bytes);
  if (!records.ok()) {
    return absl::Status(records.status().code(),
                        absl::StrCat(what, ": ", records.status().message()));
  }
  // torch::pickle_load's unpickling, fed from our own reading of the records, with the
  // size of the record behind each storage kept.
  std::map<const void*, size_t> record_bytes;
  absl::StatusOr<torch::IValue> loaded =
      TorchCall("unpickling", [&]() -> absl::StatusOr<torch::IValue> {
        size_t pos = 0;
        auto read = [&](char* buffer, size_t n) {
          n = std::min(n, records->pickle.size() - pos);
          std::copy_n(records->pickle.data() + pos, n, buffer);
          pos += n;
          return n;
        };
        auto read_record = [&](const std::string& key) {
          const auto it = records->data.find(absl::AsciiStrToLower(key));
          TORCH_CHECK(it != records->data.end(), "no record data/", key.substr(0, 64));
          at::DataPtr data = c10::GetCPUAllocator()->allocate(it->second.size());
          std::copy(it->second.begin(), it->second.end(), static_cast<char*>(data.get()));
          record_bytes[data.get()] = it->second.size();
          return data;
        };
        torch::jit::Unpickler unpickler(read, nullptr, nullptr, read_record, c10::nullopt);
        unpickler.set_version(records->version);
        return unpickler.parse_ivalue();
      });
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat(what, ": ", loaded.status().message()));
  }
  if (!loaded->isGenericDict()) return loaded;
  for (const auto& e : loaded->toGenericDict()) {
    if (!e.value().isTensor()) continue;
    const torch::Tensor& t = e.value().toTensor();
    const std::string key = e.key().isString() ? e.key().toStringRef() : "?";
    if (!t.has_storage()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": tensor ", key, " has no storage"));
    }
    const auto it = record_bytes.find(t.storage().data());
    const size_t held = it == record_bytes.end() ? 0 : it->second;
    if (absl::Status st = CheckTensorInRecord(key, t, held); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat(what, ": ", st.message()));
    }
  }
  return loaded;
}

absl::Status VerifyArchive(const std::string& bytes, const std::string& what) {
  ZipDamage damage;
  const absl::Status st = VerifyZipArchive(bytes, &damage);
  const auto prefixed = [&](const absl::Status& e) {
    return absl::Status(e.code(), absl::StrCat(what, ": ", e.message()));
  };
  if (st.ok()) return st;
  if (damage.record.empty()) return prefixed(st);
  // Each tensor's storage is one record: the stored bytes name the tensor(s) that hold them.
  std::vector<std::string> names;
  // Fails when the damage reaches the pickle itself (UnpickleArchive checks it before
  // LibTorch's unpickler sees it): then no tensor is named.
  const absl::StatusOr<torch::IValue> v = UnpickleArchive(bytes, what);
  if (v.ok() && v->isGenericDict()) {
    for (const auto& e : v->toGenericDict()) {
      if (!e.key().isString() || !e.value().isTensor()) continue;
      const c10::Storage& s = e.value().toTensor().storage();
      if (s.nbytes() == damage.data.size() &&
          std::equal(damage.data.begin(), damage.data.end(), static_cast<const char*>(s.data()))) {
        names.push_back(e.key().toStringRef());
      }
    }
  }
  const std::string tensor = names.empty() ? "" : absl::StrCat("tensor ", NameList(names), ": ");
  return prefixed(absl::Status(st.code(), absl::StrCat(tensor, st.message())));
}

std::string ConfigNameOf(const std::string& config_yaml) {
  try {
    const YAML::Node root = YAML::Load(config_yaml);
    if (root.IsMap() && root["name"] && root["name"].IsScalar()) return root["name"].Scalar();
  } catch (const std::exception&) {
  }
  return "";
}

absl::Status CheckpointRefused(const absl::Status& error, const std::string& path,
                               const CheckpointMeta& meta, const std::string& model_config) {
  const std::string from = ConfigNameOf(meta.config_yaml);
  return absl::Status(
      error.code(),
      absl::StrCat(path, " (stage ", meta.stage, from.empty() ? "" : ", config ", from,
                   ") refused by config ", model_config, ": ", error.message()));
}

absl::StatusOr<Checkpoint> ParseCheckpoint(const std::string& bytes) {
  if (absl::Status st = VerifyArchive(bytes, "checkpoint"); !st.ok()) return st;
  absl::StatusOr<torch::IValue> loaded = UnpickleArchive(bytes, "checkpoint");
  if (!loaded.ok()) return loaded.status();
  if (!loaded->isGenericDict()) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint: expected a dict of tensors, got ", loaded->tagKind()));
  }
  Checkpoint ckpt;
  for (const auto& entry : loaded->toGenericDict()) {
    if (!entry.key().isString()) {
      return absl::InvalidArgumentError("checkpoint: a key is not a string");
    }
    const std::string key = entry.key().toStringRef();
    if (!entry.value().isTensor()) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint: entry ", key, " is not a tensor"));
    }
    const torch::Tensor& t = entry.value().toTensor();
    if (!absl::StartsWith(key, kCheckpointMetaPrefix)) {
      ckpt.tensors.emplace_back(key, t);
      continue;
    }
    const std::string field = key.substr(sizeof(kCheckpointMetaPrefix) - 1);
    absl::StatusOr<std::string> text = TensorText(key, t);
    if (!text.ok()) return text.status();
    CheckpointMeta& m = ckpt.meta;
    if (field == "format_version" || field == "stage" || field == "epoch") {
      absl::StatusOr<int> v = TextInt(key, *text);
      if (!v.ok()) return v.status();
      (field == "format_version" ? m.format_version : field == "stage" ? m.stage : m.epoch) = *v;
    } else if (field == "model") {
      m.model = *text;
    } else if (field == "codebook_digest") {
      m.codebook_digest = *text;
    } else if (field == "config_yaml") {
      m.config_yaml = *text;
    }  // Unknown metadata from a later minor revision is ignored.
  }
  if (ckpt.meta.format_version > kCheckpointFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint: format version ", ckpt.meta.format_version,
                     " is newer than this build's ", kCheckpointFormatVersion));
  }
  return ckpt;
}

absl::Status SaveCheckpoint(const torch::nn::Module& module, const CheckpointMeta& meta,
                            const std::string& path) {
  absl::StatusOr<std::string> bytes = SerializeCheckpoint(module, meta);
  if (!bytes.ok()) return bytes.status();
  return WriteFileAtomic(path, *bytes);
}

absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<Checkpoint> ckpt = ParseCheckpoint(*bytes);
  if (!ckpt.ok()) {
    return absl::Status(ckpt.status().code(), absl::StrCat(path, ": ", ckpt.status().message()));
  }
  return ckpt;
}

absl::Status LoadStateDict(torch::nn::Module& module, const Checkpoint& checkpoint,
                           const LoadOptions& options) {
  auto skipped = [&](const std::string& name) {
    return options.skip_codebook && absl::StartsWith(name, kCodebookPrefix);
  };
  std::map<std::string, const torch::Tensor*> file;
  for (const auto& [name, t] : checkpoint.tensors) file[name] = &t;

  const NamedTensors target = StateDict(module);
  std::vector<std::string> missing, misshaped, unexpected;
  std::vector<std::pair<torch::Tensor, const torch::Tensor*>> copies;
  std::map<std::string, bool> known;
  for (const auto& [name, dst] : target) {
    known[name] = true;
    if (skipped(name)) continue;
    auto it = file.find(name);
    if (it == file.end()) {
      missing.push_back(name);
    } else if (it->second->sizes() != dst.sizes()) {
      misshaped.push_back(
          absl::StrCat(name, " (model ", Shape(dst), ", file ", Shape(*it->second), ")"));
    } else {
      copies.emplace_back(dst, it->second);
    }
  }
  if (!options.allow_unexpected) {
    for (const auto& [name, t] : checkpoint.tensors) {
      if (!known.count(name) && !skipped(name)) unexpected.push_back(name);
    }
  }
  if (!missing.empty() || !misshaped.empty() || !unexpected.empty()) {
    std::vector<std::string> parts;
    if (!missing.empty())
      parts.push_back(absl::StrCat(missing.size(), " missing: ", NameList(missing)));
    if (!misshaped.empty()) {
      parts.push_back(absl::StrCat(misshaped.size(), " mis-shaped: ", NameList(misshaped)));
    }
    if (!unexpected.empty()) {
      parts.push_back(absl::StrCat(unexpected.size(), " unexpected: ", NameList(unexpected)));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint does not fit the model: ", absl::StrJoin(parts, "; ")));
  }
  return TorchCall("loading the checkpoint", [&]() -> absl::Status {
    // The file's codebook must hash to the digest it records: a receiver trusts the
    // digest to name the codebook, so a silently altered codebook is refused before any
    // tensor is copied.
    if (!options.skip_codebook && !checkpoint.meta.codebook_digest.empty()) {
      const std::string digest =
          CodebookTensorsDigest([&](const std::string& name) -> const torch::Tensor* {
            auto it = file.find(kCodebookPrefix + name);
            return it == file.end() ? nullptr : it->second;
          });
      if (!digest.empty() && digest != checkpoint.meta.codebook_digest) {
        return absl::DataLossError(absl::StrCat("checkpoint: codebook digest ", digest,
                                                " does not match the recorded ",
                                                checkpoint.meta.codebook_digest));
      }
    }
    // Names that share one tensor (the umgm codebook's three names of C_i) must carry one
    // value in the file too; otherwise the last copy would silently win.
    std::map<const void*, std::pair<std::string, const torch::Tensor*>> first_of;
    for (const auto& [name, dst] : target) {
      auto it = file.find(name);
      if (skipped(name) || it == file.end()) continue;
      auto [seen, inserted] = first_of.emplace(dst.data_ptr(), std::make_pair(name, it->second));
      if (!inserted && !torch::equal(*seen->second.second, *it->second)) {
        return absl::InvalidArgumentError(
            absl::StrCat("checkpoint does not fit the model: ", name, " differs from ",
                         seen->second.first, ", which the model holds as the same tensor"));
      }
    }
    torch::NoGradGuard no_grad;
    for (auto& [dst, src] : copies) dst.copy_(*src);
    return absl::OkStatus();
  });
}

}  // namespace qv2x
