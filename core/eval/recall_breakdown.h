// Where a detector succeeds and fails, per class: recall by distance from the ego and by
// who saw the object (the ego, or only other agents), the score distributions of true and
// false positives, and which other class a missed object was detected as (a detection of
// that class centred inside it). Matching is the
// AP protocol's (average_precision.h): per frame, detections in score order each take the
// remaining ground truth of their own class with the highest rotated BEV IoU, at one IoU
// threshold.
#ifndef QV2X_CORE_EVAL_RECALL_BREAKDOWN_H_
#define QV2X_CORE_EVAL_RECALL_BREAKDOWN_H_

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/frame.h"
#include "core/eval/box_file.h"
#include "core/eval/unit_histogram.h"

namespace qv2x {

// A ground-truth box in the ego frame and whether the ego's own sweep saw it.
struct BreakdownGt {
  EvalBox box;
  bool seen_by_ego = true;
};

struct RecallCount {
  int64_t gt = 0, found = 0;
  double Recall() const { return gt > 0 ? static_cast<double>(found) / gt : 0.0; }
};

struct ClassBreakdown {
  std::vector<RecallCount> by_distance;  // one per distance bin
  RecallCount all, seen_by_ego, only_others;
  UnitHistogram tp_scores, fp_scores;
  // Missed boxes of this class with a detection of class k centred inside them.
  std::array<int64_t, kNumClasses> missed_as{};
};

class RecallBreakdown {
 public:
  // Distance bins [edges[i], edges[i+1]) of the box centre's BEV distance from the ego
  // sensor, metres; the last bin is open-ended. Edges must start at 0 and increase.
  static absl::StatusOr<RecallBreakdown> Create(double iou_threshold,
                                                std::vector<double> distance_edges_m);

  void AddFrame(const std::vector<EvalBox>& predictions, const std::vector<BreakdownGt>& gt);

  const ClassBreakdown& of(ObjectClass c) const { return classes_[static_cast<int>(c)]; }
  double iou_threshold() const { return iou_threshold_; }
  const std::vector<double>& distance_edges_m() const { return edges_; }
  // Index of the distance bin of a box centred at (x, y) in the ego frame.
  int DistanceBin(double x, double y) const;

 private:
  RecallBreakdown(double iou_threshold, std::vector<double> edges);

  double iou_threshold_;
  std::vector<double> edges_;
  std::array<ClassBreakdown, kNumClasses> classes_;
};

}  // namespace qv2x

#endif  // QV2X_CORE_EVAL_RECALL_BREAKDOWN_H_
