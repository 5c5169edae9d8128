// What `qv2x diagnose` found for a detector over a set of frames, per class: how the target
// assigner matched the ground truth, the training loss split by anchor class, the scores the
// model gives the matched anchors, and where detections succeed or fail (recall_breakdown.h).
// Filled by DiagnoseDetector (core/training/detection_diagnosis.h); plain data here so the
// report can be written and read without LibTorch.
#ifndef QV2X_CORE_EVAL_DIAGNOSIS_REPORT_H_
#define QV2X_CORE_EVAL_DIAGNOSIS_REPORT_H_

#include <array>
#include <cstdint>
#include <string>

#include "core/data/frame.h"
#include "core/eval/average_precision.h"
#include "core/eval/recall_breakdown.h"
#include "core/eval/unit_histogram.h"

namespace qv2x {

// One class's anchors over all frames (counts are sums over frames).
struct AnchorClassDiagnosis {
  bool has_anchors = false;
  int64_t gt_boxes = 0;           // ground-truth boxes of the class
  int64_t gt_no_overlap = 0;      // ... that no anchor of the class overlaps at all
  int64_t gt_forced_only = 0;     // ... positive only through the forced best-anchor match
  int64_t gt_unassigned = 0;      // ... left without any positive anchor
  UnitHistogram best_anchor_iou;  // per box: BEV IoU of its best anchor
  int64_t positives = 0, ignored = 0;
  // Per box with a positive anchor: the highest score the model gives its positive anchors.
  UnitHistogram gt_top_score;
  int64_t gt_top_above_threshold = 0;     // ... of which above score_threshold
  int64_t negatives_above_threshold = 0;  // negative anchors scoring above score_threshold
  int64_t candidates = 0;                 // anchors scoring above score_threshold (before NMS)
  int64_t detections = 0;                 // detections of the class after NMS and the range cut
  // Loss terms of the class's anchors (DetectionLoss::ByAnchorClass), summed over frames.
  double loss_cls = 0, loss_reg = 0, loss_dir = 0;
};

struct DiagnosisReport {
  explicit DiagnosisReport(RecallBreakdown b) : breakdown(std::move(b)) {}

  std::string source;  // frames' origin (sim:<scene> or a folder)
  int64_t frames = 0;
  bool ego_only = false;
  double agents_per_frame = 0;
  double score_threshold = 0;  // postprocess.target_args.score_threshold used
  std::array<AnchorClassDiagnosis, kNumClasses> anchors;
  RecallBreakdown breakdown;
  EvalResult ap;  // global sort
};

// The whole report as JSON (docs/training.md "Diagnosis" describes the keys).
std::string DiagnosisJson(const DiagnosisReport& r);
// A short fixed-width summary: one row per class.
std::string DiagnosisTable(const DiagnosisReport& r);

}  // namespace qv2x

#endif  // QV2X_CORE_EVAL_DIAGNOSIS_REPORT_H_
