// The detection evaluation protocol of SPEC §8 (OpenCOOD / V2X-Real): per-class AP at
// rotated-BEV-IoU thresholds with greedy per-frame matching and VOC all-points AP.
// docs/eval-format.md describes it for users.
#ifndef QV2X_CORE_EVAL_AVERAGE_PRECISION_H_
#define QV2X_CORE_EVAL_AVERAGE_PRECISION_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/frame.h"
#include "core/eval/box_file.h"

namespace qv2x {

// How ranked detections are pooled across frames before AP is computed.
enum class ApSortOrder {
  kGlobal,  // sort every detection of every frame by score (the corrected protocol)
  kFrame,   // concatenate each frame's score-sorted list in frame order, no global
            // re-sort (how OpenCOOD's published numbers were computed)
};

// 0.3, 0.5, 0.7.
std::vector<double> DefaultIouThresholds();

// VOC all-points AP of a precision/recall curve given point by point in rank order:
// mrec = [0, rec..., 1], mpre = [0, prec..., 0], mpre made non-increasing from the end,
// AP = sum over i where mrec changes of (mrec[i] - mrec[i-1]) * mpre[i].
double VocAllPointsAp(const std::vector<double>& recall, const std::vector<double>& precision);

// AP of detections already in rank order (`is_tp[i]` for the i-th ranked one) against
// `num_gt` ground-truth boxes. 0 when num_gt is 0 (nothing to recall) or there are no
// detections.
double RankedAp(const std::vector<uint8_t>& is_tp, int64_t num_gt);

struct EvalResult {
  std::vector<double> iou_thresholds;
  std::array<std::vector<double>, kNumClasses> ap;  // [class][threshold], class in head order
  // Mean of the three classes' AP per threshold. A class without ground truth has AP 0
  // and still counts in the mean (num_gt tells the caller which classes were present).
  std::vector<double> map;
  std::array<int64_t, kNumClasses> num_gt{};
  std::array<int64_t, kNumClasses> num_pred{};
  int64_t num_frames = 0;
};

// Online accumulator: add frames one by one, ask for AP at any time. Matching happens in
// AddFrame (per class, per threshold); a query only pools and ranks the stored results.
// With window_frames > 0 only the latest window_frames frames count (a rolling AP). Not
// thread-safe.
class ApAccumulator {
 public:
  explicit ApAccumulator(std::vector<double> iou_thresholds = DefaultIouThresholds(),
                         size_t window_frames = 0);

  // One frame's predictions (with scores) and ground truth, in one common frame of
  // reference. A prediction only matches ground truth of its own class.
  void AddFrame(const std::vector<EvalBox>& predictions, const std::vector<EvalBox>& ground_truth);

  double Ap(ObjectClass cls, size_t threshold_index, ApSortOrder order) const;
  EvalResult Result(ApSortOrder order) const;

  const std::vector<double>& iou_thresholds() const { return thresholds_; }
  int64_t num_frames() const { return static_cast<int64_t>(frames_.size()); }
  void Reset() { frames_.clear(); }

 private:
  // Per frame and class: the detections in score order, each with one TP flag per
  // threshold (tp[det * thresholds + t]).
  struct ClassRecord {
    int64_t num_gt = 0;
    std::vector<double> scores;
    std::vector<uint8_t> tp;
  };
  using FrameRecord = std::array<ClassRecord, kNumClasses>;

  // Pooled detections of one class in rank order for `order`: their TP flags for every
  // threshold and the ground-truth count.
  void Pool(int cls, ApSortOrder order, std::vector<std::vector<uint8_t>>* tp_per_threshold,
            int64_t* num_gt, int64_t* num_pred) const;

  std::vector<double> thresholds_;
  size_t window_frames_;
  std::deque<FrameRecord> frames_;
};

// Evaluates a prediction file against a ground-truth file. Frames are taken in the
// ground-truth file's order; a ground-truth frame absent from the predictions has no
// detections; a prediction frame absent from the ground truth is an InvalidArgument
// error naming it.
absl::StatusOr<EvalResult> EvaluateFrames(
    const std::vector<FrameBoxes>& predictions, const std::vector<FrameBoxes>& ground_truth,
    ApSortOrder order, std::vector<double> iou_thresholds = DefaultIouThresholds());

}  // namespace qv2x

#endif  // QV2X_CORE_EVAL_AVERAGE_PRECISION_H_
