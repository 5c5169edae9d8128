// Runs a detector over frames and scores it with the SPEC §8 protocol. Serves validation
// during training and `qv2x infer`.
#ifndef QV2X_CORE_TRAINING_EVALUATOR_H_
#define QV2X_CORE_TRAINING_EVALUATOR_H_

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/detection/anchors.h"
#include "core/detection/postprocess.h"
#include "core/detection/target_assigner.h"
#include "core/eval/average_precision.h"
#include "core/eval/box_file.h"
#include "core/model/detector.h"
#include "core/training/frame_source.h"

namespace qv2x {

struct EvalOptions {
  bool ego_only = false;  // the no-cooperation baseline with the same weights
  // Called after each frame with its index, the frame, the detections and the ground truth
  // (ego frame), e.g. to render it.
  std::function<void(size_t, const SceneFrame&, const std::vector<Detection>&,
                     const std::vector<LabeledBox>&)>
      on_frame;
};

struct EvalRun {
  EvalResult result;  // global sort
  std::vector<FrameBoxes> predictions, ground_truth;
  double model_seconds_per_frame = 0;  // forward + post-processing
  double agents_per_frame = 0;
};

std::vector<EvalBox> ToEvalBoxes(const std::vector<Detection>& detections);
std::vector<EvalBox> ToEvalBoxes(const std::vector<LabeledBox>& gt);

// Puts the model in eval mode (and leaves it there).
absl::StatusOr<EvalRun> EvaluateDetector(Detector& model, const FrameSource& source,
                                         const StageConfig& cfg, const AnchorGrid& grid,
                                         const EvalOptions& options = {});

}  // namespace qv2x

#endif  // QV2X_CORE_TRAINING_EVALUATOR_H_
