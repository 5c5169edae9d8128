// Structural checks of the model part of a stage config, done before any module is built
// so that a bad preset fails with the key path instead of a LibTorch shape error. No
// LibTorch here: the CLI and services include it freely.
#ifndef QV2X_CORE_MODEL_MODEL_VALIDATION_H_
#define QV2X_CORE_MODEL_MODEL_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/model_config.h"

namespace qv2x {

// InvalidArgument naming the key (e.g. `model.args.shrink_header.input_dim: expected 384
// (sum of fusion_backbone.num_upsample_filters), got 256`).
absl::Status ValidateModelConfig(const StageConfig& cfg);

// Map sizes the model produces at a preset.
struct BevGeometry {
  int64_t pillar_h = 0, pillar_w = 0;    // scatter canvas (y rows × x columns)
  int64_t feature_h = 0, feature_w = 0;  // backbone output = fusion / head resolution
  int64_t backbone_stride = 1;
};
absl::StatusOr<BevGeometry> ComputeBevGeometry(const StageConfig& cfg);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_MODEL_VALIDATION_H_
