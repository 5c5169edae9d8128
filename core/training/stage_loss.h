// The loss one training step minimises, by stage (SPEC §6): detection + pyramid occupancy
// (stage 1), codebook reconstruction with the rest frozen (stage 2), detection + weighted
// codebook loss (stage 3).
#ifndef QV2X_CORE_TRAINING_STAGE_LOSS_H_
#define QV2X_CORE_TRAINING_STAGE_LOSS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/detection/loss.h"
#include "core/model/detector.h"
#include "core/training/sample_builder.h"

namespace qv2x {

// Backbone features of every agent of every sample, [A, C, h, w], without gradient (the
// encoder is frozen wherever this is used: stage 2 and the codebook's k-means start).
torch::Tensor FrozenAgentFeatures(Detector& model, const std::vector<Sample>& samples);

// Forward pass over `batch` and the stage's loss terms (total and by name). The model's
// train/eval modes are the caller's (SetTrainMode).
absl::StatusOr<LossTerms> ComputeStageLoss(Detector& model, const StageConfig& cfg,
                                           const std::vector<Sample>& batch, int stage);

}  // namespace qv2x

#endif  // QV2X_CORE_TRAINING_STAGE_LOSS_H_
