// Anchor target assignment (SPEC §3 "Anchors"): labels, regression and direction targets
// for one frame, and the per-agent occupancy labels of the pyramid (stage 1).
//
// Matching: axis-aligned BEV IoU (qv2x::AxisAlignedBevIou semantics) between every anchor
// and every ground-truth box of the anchor's class. IoU >= pos_threshold: positive;
// < neg_threshold: negative; in between: ignored. Each box with any overlap also makes its
// best anchor (ties: lowest flat index) positive. A positive anchor regresses to the box
// it overlaps most (ties: lowest box index); a best-anchor match overrides that.
#ifndef QV2X_CORE_DETECTION_TARGET_ASSIGNER_H_
#define QV2X_CORE_DETECTION_TARGET_ASSIGNER_H_

#include <ATen/core/Tensor.h>

#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/data/frame.h"
#include "core/detection/anchors.h"
#include "core/geometry/box.h"
#include "core/geometry/transform.h"

namespace qv2x {

// A ground-truth box in one agent's (or the ego's) lidar frame.
struct LabeledBox {
  ObjectClass cls = ObjectClass::kVehicle;
  Box3D box;
};

// World-frame objects expressed in the frame of the agent at `lidar_pose`.
std::vector<LabeledBox> BoxesInAgentFrame(const std::vector<GtObject>& objects,
                                          const Pose& lidar_pose);

// How one ground-truth box was matched, for diagnosis (qv2x diagnose).
struct GtAssignment {
  int anchor_class = -1;  // -1: skipped (no anchors for its class, or an unusable box)
  double best_iou = 0;    // BEV IoU of its best anchor; 0 when no anchor of its class overlaps
  // Flat indices (row, col, anchor order) of the positive anchors that regress to it.
  std::vector<int64_t> anchors;
  // No anchor reached pos_threshold: its only positive is the forced best-anchor match.
  bool forced_only = false;
};

struct FrameTargets {
  at::Tensor labels;       // [H', W', A] float32: 1 positive, 0 negative, -1 ignored
  at::Tensor reg_targets;  // [H', W', A, 7] float32 (box_coder.h encoding), 0 unless positive
  at::Tensor dir_targets;  // [H', W', A] int64: direction bin of positives, -1 elsewhere
  int num_positive = 0;
  std::vector<GtAssignment> per_gt;  // in the order of the boxes given
};

// Targets for one frame. Boxes of classes without anchors and boxes with a non-positive or
// non-finite size are skipped. Fails only on a malformed grid.
absl::StatusOr<FrameTargets> AssignTargets(const AnchorGrid& grid,
                                           const std::vector<LabeledBox>& gt, const DirConfig& dir);

// Frames stacked along a new leading batch dimension (what DetectionLoss takes).
struct BatchTargets {
  at::Tensor labels;       // [B, H', W', A]
  at::Tensor reg_targets;  // [B, H', W', A, 7]
  at::Tensor dir_targets;  // [B, H', W', A]
};
absl::StatusOr<BatchTargets> StackTargets(const std::vector<FrameTargets>& frames);

// Downsampling of each pyramid level relative to the head grid: the running product of
// model.fusion_backbone.layer_strides ([1, 2, 2] -> [1, 2, 4]).
std::vector<int> OccupancyLevelStrides(const StageConfig& config);

// Occupancy labels from assigned labels [H', W', A]: a cell is 1 when any of its anchors is
// positive, then max-pooled with kernel = stride = s (ceil mode, matching a stride-2
// 3x3/pad-1 conv's output size) for each s in `level_strides`. Each result: [1, H_l, W_l]
// float32.
std::vector<at::Tensor> OccupancyLabels(const at::Tensor& labels,
                                        const std::vector<int>& level_strides);

// The same from one agent's ground truth, given in that agent's own frame.
absl::StatusOr<std::vector<at::Tensor>> AgentOccupancyLabels(
    const AnchorGrid& grid, const std::vector<LabeledBox>& gt_in_agent_frame,
    const std::vector<int>& level_strides);

}  // namespace qv2x

#endif  // QV2X_CORE_DETECTION_TARGET_ASSIGNER_H_
