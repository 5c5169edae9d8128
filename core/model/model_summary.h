// Torch-free entry points for tools: parameter counts per top-level module and a freshly
// initialised checkpoint. The CLI includes this header, never <torch/torch.h>.
#ifndef QV2X_CORE_MODEL_MODEL_SUMMARY_H_
#define QV2X_CORE_MODEL_MODEL_SUMMARY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/model/model_cost.h"
#include "core/model/model_validation.h"

namespace qv2x {

struct ModuleSummary {
  std::string name;        // QuantV2X name: encoder_m1, backbone_m1, codebook, ...
  int64_t parameters = 0;  // trainable tensors' elements
  int64_t buffers = 0;     // BatchNorm running statistics and counters
};

struct ModelSummary {
  std::string model;  // model.core_method
  std::vector<ModuleSummary> modules;
  int64_t parameters = 0;
  int64_t fp32_bytes = 0;  // 4 × parameters
  BevGeometry geometry;
  ModelCost cost;
};

absl::StatusOr<ModelSummary> SummarizeModel(const StageConfig& cfg);

struct InitialCheckpoint {
  int64_t parameters = 0;
  std::string codebook_digest;  // empty without a codebook
};

// Builds the detector with torch::manual_seed(seed) and writes it as a stage-0 checkpoint
// (metadata: the config text, epoch 0, the codebook digest).
absl::StatusOr<InitialCheckpoint> WriteInitialCheckpoint(const StageConfig& cfg, uint64_t seed,
                                                         const std::string& path);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_MODEL_SUMMARY_H_
