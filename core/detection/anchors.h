// Class-specific anchors on the detection-head grid (SPEC §3 "Anchors").
//
// Layout: a tensor [H', W', A, 7] of (x, y, z, l, w, h, yaw), H' = grid_h / feature_stride
// rows along lidar y, W' = grid_w / feature_stride columns along lidar x, and anchor index
// a = class_index * num_yaws + yaw_index. Flattening it gives the head's channel order:
// cls channel a, reg channel a * 7 + k, dir channel a * num_bins + b.
#ifndef QV2X_CORE_DETECTION_ANCHORS_H_
#define QV2X_CORE_DETECTION_ANCHORS_H_

#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/data/frame.h"

namespace qv2x {

struct AnchorGrid {
  int feature_h = 0;  // H' (rows, lidar y)
  int feature_w = 0;  // W' (columns, lidar x)
  int num_classes = 0;
  int num_yaws = 0;
  // Centre of cell (row 0, col 0) and the spacing between cells, metres.
  double first_x = 0, first_y = 0;
  double step_x = 0, step_y = 0;
  // The object class of each anchor class (postprocess.anchor_args.classes order).
  std::vector<ObjectClass> class_ids;
  // Per anchor class: matching thresholds.
  std::vector<double> pos_threshold, neg_threshold;
  at::Tensor anchors;  // [H', W', A, 7] float32, CPU, contiguous

  int anchors_per_cell() const { return num_classes * num_yaws; }
  int num_anchors() const { return feature_h * feature_w * anchors_per_cell(); }
  // Anchor class index of an object class, or nullopt when the config has no anchors for it.
  std::optional<int> ClassIndex(ObjectClass c) const;
};

// Builds the anchors from preprocess (range, pillar size) and postprocess.anchor_args.
// Fails with the offending key named when the grid does not divide by the stride, a class
// name is unknown or a size is not positive.
absl::StatusOr<AnchorGrid> MakeAnchorGrid(const StageConfig& config);

}  // namespace qv2x

#endif  // QV2X_CORE_DETECTION_ANCHORS_H_
