// The INT8 model for the services: an agent encoder and an ego fusion half loaded from an
// INT8 artifact (docs/int8-format.md). Both keep the FP32 model's codebook, so indices are
// in the same codebook and carry the same digest. No LibTorch headers beyond ATen's
// Tensor; include core/model/ego_fusion.h to use Int8EgoFusion::Fuse's types.
#ifndef QV2X_CORE_QUANT_INT8_MODEL_H_
#define QV2X_CORE_QUANT_INT8_MODEL_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/voxel/pillars.h"

namespace qv2x {
struct AgentMessage;
struct HeadOutput;
}  // namespace qv2x

namespace qv2x::quant {

class Int8Net;

class Int8AgentEncoder {
 public:
  static absl::StatusOr<std::unique_ptr<Int8AgentEncoder>> Load(const std::string& artifact_path);
  ~Int8AgentEncoder();

  // One agent's sweep → codebook indices [L·m, h, w] int64 (FailedPrecondition for a model
  // without a codebook).
  absl::StatusOr<at::Tensor> EncodeIndices(const Pillars& pillars);
  // Backbone features [C, h, w] float (dequantized INT8 output), e.g. for stage-1 models.
  absl::StatusOr<at::Tensor> EncodeFeatures(const Pillars& pillars);

  const std::string& codebook_digest() const;
  // Bytes of the artifact's tensors (integer weights as stored, scales, biases, FP32 parts).
  int64_t weight_bytes() const;
  const StageConfig& config() const;

 private:
  explicit Int8AgentEncoder(std::shared_ptr<Int8Net> net);
  std::shared_ptr<Int8Net> net_;
};

class Int8EgoFusion {
 public:
  static absl::StatusOr<std::unique_ptr<Int8EgoFusion>> Load(const std::string& artifact_path);
  ~Int8EgoFusion();

  // One frame, ego first: indices decoded with the FP32 codebook (or FP32 features), the
  // pyramid trunk, decoders and shrink header in INT8, occupancy, warping and fusion in
  // FP32, heads with int8 weights and FP32 outputs.
  absl::StatusOr<HeadOutput> Fuse(const std::vector<AgentMessage>& agents);

  const std::string& codebook_digest() const;
  int64_t weight_bytes() const;
  const StageConfig& config() const;

 private:
  explicit Int8EgoFusion(std::shared_ptr<Int8Net> net);
  std::shared_ptr<Int8Net> net_;
};

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_INT8_MODEL_H_
