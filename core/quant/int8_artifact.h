// The INT8 artifact on disk (docs/int8-format.md): a pickled dict of name → tensor, like
// a checkpoint, holding the folded layers' integer weights (bit-packed below 8 bits) with
// their per-channel scales, zero points and FP32 biases, the activation quantizers, the
// parts kept in FP32 (codebook, occupancy heads, PFN input scale) and text metadata.
#ifndef QV2X_CORE_QUANT_INT8_ARTIFACT_H_
#define QV2X_CORE_QUANT_INT8_ARTIFACT_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/quant/quantizer.h"

namespace qv2x::quant {

inline constexpr int kInt8FormatVersion = 1;
inline constexpr char kInt8MetaPrefix[] = "__qv2x_int8__.";

struct Int8Layer {
  std::vector<int64_t> shape;  // executed weight shape (see model_spec.h)
  int bits = 8;
  at::Tensor levels;      // uint8, `shape`: unsigned levels in [0, 2^bits)
  at::Tensor scale;       // float32 [rows]
  at::Tensor zero_point;  // int32 [rows]
  at::Tensor bias;        // float32 [rows]
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
};

struct Int8Artifact {
  int format_version = kInt8FormatVersion;
  std::string config_yaml;      // the stage YAML of the FP32 model
  std::string codebook_digest;  // of the FP32 codebook (unchanged); "" without one
  std::string report_json;      // PTQ options and reconstruction results (JSON)
  std::map<std::string, Int8Layer> layers;
  std::map<std::string, ActQuant> acts;
  std::map<std::string, at::Tensor> fp32;  // codebook levels, occupancy heads, PFN input scale

  // Bytes of every stored tensor (packed weights, scales, biases, FP32 parts), metadata
  // excluded: what the model needs in memory at most.
  int64_t PayloadBytes() const;
};

absl::StatusOr<std::string> SerializeInt8Artifact(const Int8Artifact& artifact);
absl::StatusOr<Int8Artifact> ParseInt8Artifact(const std::string& bytes);
// Atomic write (temporary file + rename).
absl::Status SaveInt8Artifact(const Int8Artifact& artifact, const std::string& path);
absl::StatusOr<Int8Artifact> ReadInt8Artifact(const std::string& path);

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_INT8_ARTIFACT_H_
