// The model a service runs: a stage YAML plus its weights, in eval mode. Agents use its
// encoder half, the fusion service its fusion half; both must hold the same codebook.
#ifndef QV2X_CORE_MODEL_RUNTIME_MODEL_H_
#define QV2X_CORE_MODEL_RUNTIME_MODEL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/model/detector.h"

namespace qv2x {

struct RuntimeModel {
  StageConfig cfg;
  Detector detector{nullptr};
  std::string checkpoint;       // empty: the seeded initial model
  std::string codebook_digest;  // empty without a codebook
};

// Seed of the initial model used when no checkpoint is given: every process that builds
// it gets the same weights and codebook, so an untrained scene still exchanges indices.
inline constexpr uint64_t kInitialModelSeed = 20240601;

// Loads `checkpoint` (NotFound naming the path when it does not exist) or, when it is
// empty, builds the seeded initial model. Requires a codebook model.
// `overrides` are `key.path=value` assignments applied to the YAML (see LoadStageConfig).
absl::StatusOr<RuntimeModel> LoadRuntimeModel(const std::string& config_path,
                                              const std::string& checkpoint,
                                              const std::vector<std::string>& overrides = {});

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_RUNTIME_MODEL_H_
