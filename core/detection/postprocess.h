// From head outputs to boxes (SPEC §3 "Post-processing"): sigmoid > score_threshold, the
// top max_num by score, decode from the anchors, heading fixed by the direction bin,
// class from the anchor, class-agnostic rotated BEV NMS (IoU > nms_thresh suppressed),
// then only boxes whose four BEV corners lie inside postprocess.gt_range (OpenCOOD's rule).
#ifndef QV2X_CORE_DETECTION_POSTPROCESS_H_
#define QV2X_CORE_DETECTION_POSTPROCESS_H_

#include <ATen/core/Tensor.h>

#include <array>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/data/frame.h"
#include "core/detection/anchors.h"
#include "core/detection/head_outputs.h"
#include "core/geometry/box.h"

namespace qv2x {

struct Detection {
  ObjectClass cls = ObjectClass::kVehicle;
  Box3D box;  // ego frame; yaw in [-π, π)
  double score = 0;
};

// One frame: cls [A, H', W'] (or [A·C, H', W'], a vector over the grid's C classes per
// anchor: score = the largest class probability, the box takes that class), reg [7A, H', W'],
// dir [num_bins·A, H', W'], each optionally
// with a leading batch dimension of 1; any device. Detections come sorted by score,
// highest first. Boxes that decode to a non-finite or non-positive size are dropped.
absl::StatusOr<std::vector<Detection>> PostProcess(const AnchorGrid& grid, const at::Tensor& cls,
                                                   const at::Tensor& reg, const at::Tensor& dir,
                                                   const PostprocessConfig& config,
                                                   const DirConfig& dir_config);

// Every frame of a batch.
absl::StatusOr<std::vector<std::vector<Detection>>> PostProcessBatch(
    const AnchorGrid& grid, const HeadOutputs& out, const PostprocessConfig& config,
    const DirConfig& dir_config);

// True when all four BEV corners of `b` lie within range's x/y bounds (inclusive);
// range = x0 y0 z0 x1 y1 z1.
bool BevInsideRange(const Box3D& b, const std::array<double, 6>& range);

}  // namespace qv2x

#endif  // QV2X_CORE_DETECTION_POSTPROCESS_H_
