#include "core/quant/int8_artifact.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/model/checkpoint.h"
#include "core/model/torch_status.h"
#include "core/quant/bit_pack.h"

namespace qv2x::quant {
namespace {

constexpr char kActPrefix[] = "act.";
constexpr char kFp32Prefix[] = "fp32.";

at::Tensor TextTensor(const std::string& s) {
  at::Tensor t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  std::copy(s.begin(), s.end(), reinterpret_cast<char*>(t.data_ptr<uint8_t>()));
  return t;
}

absl::StatusOr<std::string> TensorText(const std::string& key, const at::Tensor& t) {
  if (t.scalar_type() != torch::kUInt8 || t.dim() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("int8 artifact: ", key, " is not text"));
  }
  const at::Tensor c = t.contiguous();
  const char* p = reinterpret_cast<const char*>(c.data_ptr<uint8_t>());
  return std::string(p, p + c.numel());
}

absl::Status Expect(bool ok, const std::string& key, const std::string& what) {
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("int8 artifact: ", key, ": ", what));
}

// Checks a layer read from a file and unpacks its levels.
absl::Status FinishLayer(const std::string& name, const std::map<std::string, at::Tensor>& f,
                         Int8Layer* layer) {
  for (const char* field :
       {"qweight", "qweight_shape", "qweight_bits", "w_scale", "w_zero_point", "bias"}) {
    QV2X_RETURN_IF_ERROR(Expect(f.count(field) > 0, name, absl::StrCat("missing ", field)));
  }
  const at::Tensor shape = f.at("qweight_shape").to(torch::kInt64).contiguous();
  layer->shape.assign(shape.data_ptr<int64_t>(), shape.data_ptr<int64_t>() + shape.numel());
  layer->bits = static_cast<int>(f.at("qweight_bits").to(torch::kInt64).item<int64_t>());
  QV2X_RETURN_IF_ERROR(Expect(layer->bits >= 2 && layer->bits <= 8 && !layer->shape.empty(), name,
                              "bad bit width or shape"));
  // The weight count, refused before it overflows (a file's shape is anything).
  int64_t count = 1;
  for (int64_t d : layer->shape) {
    QV2X_RETURN_IF_ERROR(Expect(d > 0 && count <= (int64_t{1} << 40) / d, name,
                                absl::StrCat("qweight_shape ", absl::StrJoin(layer->shape, "x"),
                                             " is not a weight shape")));
    count *= d;
  }
  const int64_t rows = layer->shape[0];
  const at::Tensor packed = f.at("qweight").contiguous();
  QV2X_RETURN_IF_ERROR(Expect(packed.scalar_type() == torch::kUInt8, name, "qweight not uint8"));
  QV2X_ASSIGN_OR_RETURN(std::vector<uint8_t> levels,
                        UnpackBits(packed.data_ptr<uint8_t>(), packed.numel(), count, layer->bits));
  layer->levels =
      torch::from_blob(levels.data(), {count}, torch::kUInt8).clone().view(layer->shape);
  layer->scale = f.at("w_scale").to(torch::kFloat32).contiguous();
  layer->zero_point = f.at("w_zero_point").to(torch::kInt32).contiguous();
  layer->bias = f.at("bias").to(torch::kFloat32).contiguous();
  QV2X_RETURN_IF_ERROR(Expect(layer->scale.numel() == rows && layer->zero_point.numel() == rows &&
                                  layer->bias.numel() == rows,
                              name, "per-channel tensors do not match the rows"));
  return absl::OkStatus();
}

}  // namespace

int64_t Int8Artifact::PayloadBytes() const {
  int64_t bytes = 0;
  for (const auto& [name, l] : layers) {
    bytes += PackedBytes(l.levels.numel(), l.bits);
    bytes += l.scale.nbytes() + l.zero_point.nbytes() + l.bias.nbytes();
    bytes += 8 * static_cast<int64_t>(l.shape.size() + 1);  // shape + bits
  }
  bytes += 24 * static_cast<int64_t>(acts.size());
  for (const auto& [name, t] : fp32) bytes += t.nbytes();
  return bytes;
}

absl::StatusOr<std::string> SerializeInt8Artifact(const Int8Artifact& a) {
  return TorchCall("writing the int8 artifact", [&]() -> absl::StatusOr<std::string> {
    c10::Dict<std::string, at::Tensor> dict;
    const std::string m = kInt8MetaPrefix;
    dict.insert(m + "format_version", TextTensor(std::to_string(a.format_version)));
    dict.insert(m + "config_yaml", TextTensor(a.config_yaml));
    dict.insert(m + "codebook_digest", TextTensor(a.codebook_digest));
    dict.insert(m + "report", TextTensor(a.report_json));
    for (const auto& [name, l] : a.layers) {
      const at::Tensor levels = l.levels.to(torch::kUInt8).contiguous();
      std::vector<uint8_t> packed = PackBits(levels.data_ptr<uint8_t>(), levels.numel(), l.bits);
      dict.insert(
          name + ".qweight",
          torch::from_blob(packed.data(), {static_cast<int64_t>(packed.size())}, torch::kUInt8)
              .clone());
      dict.insert(name + ".qweight_shape", torch::tensor(l.shape, torch::kInt64));
      dict.insert(name + ".qweight_bits", torch::tensor({static_cast<int64_t>(l.bits)}));
      dict.insert(name + ".w_scale", l.scale.to(torch::kFloat32).contiguous());
      dict.insert(name + ".w_zero_point", l.zero_point.to(torch::kInt32).contiguous());
      dict.insert(name + ".bias", l.bias.to(torch::kFloat32).contiguous());
    }
    for (const auto& [name, q] : a.acts) {
      dict.insert(kActPrefix + name, torch::tensor({q.scale, static_cast<double>(q.zero_point),
                                                    static_cast<double>(q.bits)},
                                                   torch::kFloat64));
    }
    for (const auto& [name, t] : a.fp32) {
      dict.insert(kFp32Prefix + name, t.to(torch::kFloat32).contiguous());
    }
    const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
    return std::string(bytes.begin(), bytes.end());
  });
}

absl::StatusOr<Int8Artifact> ParseInt8Artifact(const std::string& bytes) {
  QV2X_RETURN_IF_ERROR(VerifyArchive(bytes, "int8 artifact"));
  QV2X_ASSIGN_OR_RETURN(c10::IValue loaded, UnpickleArchive(bytes, "int8 artifact"));
  if (!loaded.isGenericDict()) {
    return absl::InvalidArgumentError("int8 artifact: expected a dict of tensors");
  }
  Int8Artifact a;
  a.format_version = 0;
  std::map<std::string, std::map<std::string, at::Tensor>> layer_fields;
  for (const auto& entry : loaded.toGenericDict()) {
    if (!entry.key().isString() || !entry.value().isTensor()) {
      return absl::InvalidArgumentError("int8 artifact: entries must be string → tensor");
    }
    const std::string key = entry.key().toStringRef();
    const at::Tensor& t = entry.value().toTensor();
    if (absl::StartsWith(key, kInt8MetaPrefix)) {
      const std::string field = key.substr(sizeof(kInt8MetaPrefix) - 1);
      QV2X_ASSIGN_OR_RETURN(std::string text, TensorText(key, t));
      if (field == "format_version") {
        if (!absl::SimpleAtoi(text, &a.format_version)) {
          return absl::InvalidArgumentError("int8 artifact: bad format_version");
        }
      } else if (field == "config_yaml") {
        a.config_yaml = text;
      } else if (field == "codebook_digest") {
        a.codebook_digest = text;
      } else if (field == "report") {
        a.report_json = text;
      }
    } else if (absl::StartsWith(key, kActPrefix)) {
      QV2X_ASSIGN_OR_RETURN(
          const at::Tensor v,
          TorchCall("reading the int8 artifact", [&]() -> absl::StatusOr<at::Tensor> {
            return t.to(torch::kFloat64).contiguous();
          }));
      QV2X_RETURN_IF_ERROR(Expect(v.numel() == 3, key, "expected (scale, zero_point, bits)"));
      const double* p = v.data_ptr<double>();
      // Ranges checked on the doubles: casting a NaN or huge value to an integer is undefined.
      QV2X_RETURN_IF_ERROR(Expect(p[0] > 0 && std::isfinite(p[0]) && p[2] >= 2 && p[2] <= 8 &&
                                      p[1] >= 0 && p[1] <= QMax(static_cast<int>(p[2])),
                                  key, "bad activation quantizer"));
      ActQuant q;
      q.scale = p[0];
      q.zero_point = static_cast<int64_t>(p[1]);
      q.bits = static_cast<int>(p[2]);
      a.acts[key.substr(sizeof(kActPrefix) - 1)] = q;
    } else if (absl::StartsWith(key, kFp32Prefix)) {
      QV2X_ASSIGN_OR_RETURN(
          a.fp32[key.substr(sizeof(kFp32Prefix) - 1)],
          TorchCall("reading the int8 artifact", [&]() -> absl::StatusOr<at::Tensor> {
            return t.to(torch::kFloat32).contiguous();
          }));
    } else {
      const size_t dot = key.rfind('.');
      if (dot == std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("int8 artifact: unknown entry ", key));
      }
      layer_fields[key.substr(0, dot)][key.substr(dot + 1)] = t;
    }
  }
  if (a.format_version < 1 || a.format_version > kInt8FormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("int8 artifact: format version ", a.format_version,
                     " is not supported (this build: ", kInt8FormatVersion, ")"));
  }
  for (const auto& entry : layer_fields) {
    // Not a structured binding: a lambda may not capture one before C++20 (clang refuses).
    const std::string& name = entry.first;
    Int8Layer layer;
    QV2X_RETURN_IF_ERROR(TorchCall("reading the int8 artifact",
                                   [&] { return FinishLayer(name, entry.second, &layer); }));
    a.layers[name] = std::move(layer);
  }
  return a;
}

absl::Status SaveInt8Artifact(const Int8Artifact& artifact, const std::string& path) {
  QV2X_ASSIGN_OR_RETURN(std::string bytes, SerializeInt8Artifact(artifact));
  return WriteFileAtomic(path, bytes);
}

absl::StatusOr<Int8Artifact> ReadInt8Artifact(const std::string& path) {
  QV2X_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  absl::StatusOr<Int8Artifact> a = ParseInt8Artifact(bytes);
  if (!a.ok())
    return absl::Status(a.status().code(), absl::StrCat(path, ": ", a.status().message()));
  return a;
}

}  // namespace qv2x::quant
