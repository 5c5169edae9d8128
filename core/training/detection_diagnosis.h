// Runs a detector over frames and records, per class, what diagnosis_report.h holds: the
// target assigner's matches, the loss by anchor class, the model's scores on matched and
// unmatched anchors, and recall by distance and visibility. Serves `qv2x diagnose`.
#ifndef QV2X_CORE_TRAINING_DETECTION_DIAGNOSIS_H_
#define QV2X_CORE_TRAINING_DETECTION_DIAGNOSIS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/detection/anchors.h"
#include "core/eval/diagnosis_report.h"
#include "core/model/detector.h"
#include "core/training/frame_source.h"

namespace qv2x {

struct DiagnosisOptions {
  bool ego_only = false;       // the ego's features alone, scored against the same ground truth
  double iou_threshold = 0.5;  // for recall and the true / false positive split
  std::vector<double> distance_edges_m = {0, 10, 20, 30, 40};
};

// Puts the model in eval mode (and leaves it there). The loss is computed on the eval-mode
// outputs with test-mode pillars, so it matches what validation sees, not a training step.
absl::StatusOr<DiagnosisReport> DiagnoseDetector(Detector& model, const FrameSource& source,
                                                 const StageConfig& cfg, const AnchorGrid& grid,
                                                 const DiagnosisOptions& options = {});

}  // namespace qv2x

#endif  // QV2X_CORE_TRAINING_DETECTION_DIAGNOSIS_H_
