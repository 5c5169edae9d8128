#include "core/detection/anchors.h"

#include <torch/torch.h>

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "core/geometry/transform.h"

namespace qv2x {

std::optional<int> AnchorGrid::ClassIndex(ObjectClass c) const {
  for (size_t i = 0; i < class_ids.size(); ++i) {
    if (class_ids[i] == c) return static_cast<int>(i);
  }
  return std::nullopt;
}

namespace {

// Pillars along one axis; rounded because range / size is rarely an exact double.
long GridCells(double lo, double hi, double size) { return std::lround((hi - lo) / size); }

absl::Status ValidateAxis(const char* name, double lo, double hi, double size, int stride,
                          int* cells_out) {
  if (!(size > 0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("preprocess.args.voxel_size: %s size must be > 0", name));
  }
  if (!(hi > lo)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("preprocess.cav_lidar_range: %s range is empty", name));
  }
  const long cells = GridCells(lo, hi, size);
  if (cells % stride != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "postprocess.anchor_args.feature_stride: %d does not divide the %ld pillars along %s",
        stride, cells, name));
  }
  *cells_out = static_cast<int>(cells / stride);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AnchorGrid> MakeAnchorGrid(const StageConfig& config) {
  const PostprocessConfig& pp = config.postprocess;
  const VoxelConfig& vox = config.preprocess;
  if (pp.feature_stride <= 0) {
    return absl::InvalidArgumentError("postprocess.anchor_args.feature_stride must be > 0");
  }
  if (pp.classes.empty()) {
    return absl::InvalidArgumentError("postprocess.anchor_args.classes is empty");
  }
  if (pp.yaws_deg.empty()) {
    return absl::InvalidArgumentError("postprocess.anchor_args.r is empty");
  }
  AnchorGrid grid;
  const auto& r = vox.lidar_range;
  const auto& vs = vox.voxel_size;
  absl::Status st = ValidateAxis("x", r[0], r[3], vs[0], pp.feature_stride, &grid.feature_w);
  if (!st.ok()) return st;
  st = ValidateAxis("y", r[1], r[4], vs[1], pp.feature_stride, &grid.feature_h);
  if (!st.ok()) return st;

  grid.num_classes = static_cast<int>(pp.classes.size());
  grid.num_yaws = static_cast<int>(pp.yaws_deg.size());
  grid.step_x = vs[0] * pp.feature_stride;
  grid.step_y = vs[1] * pp.feature_stride;
  grid.first_x = r[0] + 0.5 * grid.step_x;
  grid.first_y = r[1] + 0.5 * grid.step_y;
  for (size_t c = 0; c < pp.classes.size(); ++c) {
    const AnchorClassConfig& cc = pp.classes[c];
    const std::string key = absl::StrFormat("postprocess.anchor_args.classes[%d]", c);
    const auto id = ClassFromName(cc.name);
    if (!id) return absl::InvalidArgumentError(key + ".name: unknown class '" + cc.name + "'");
    if (grid.ClassIndex(*id)) {
      return absl::InvalidArgumentError(key + ".name: class '" + cc.name + "' listed twice");
    }
    if (!(cc.l > 0 && cc.w > 0 && cc.h > 0)) {
      return absl::InvalidArgumentError(key + ": l, w and h must be > 0");
    }
    if (!(cc.neg_threshold <= cc.pos_threshold)) {
      return absl::InvalidArgumentError(key + ": neg_threshold must not exceed pos_threshold");
    }
    grid.class_ids.push_back(*id);
    grid.pos_threshold.push_back(cc.pos_threshold);
    grid.neg_threshold.push_back(cc.neg_threshold);
  }

  const int a_per_cell = grid.anchors_per_cell();
  grid.anchors = torch::empty({grid.feature_h, grid.feature_w, a_per_cell, 7}, torch::kFloat32);
  float* out = grid.anchors.data_ptr<float>();
  for (int row = 0; row < grid.feature_h; ++row) {
    const double y = grid.first_y + row * grid.step_y;
    for (int col = 0; col < grid.feature_w; ++col) {
      const double x = grid.first_x + col * grid.step_x;
      for (int c = 0; c < grid.num_classes; ++c) {
        const AnchorClassConfig& cc = pp.classes[c];
        for (int k = 0; k < grid.num_yaws; ++k) {
          const float v[7] = {static_cast<float>(x),
                              static_cast<float>(y),
                              static_cast<float>(cc.z),
                              static_cast<float>(cc.l),
                              static_cast<float>(cc.w),
                              static_cast<float>(cc.h),
                              static_cast<float>(DegToRad(pp.yaws_deg[k]))};
          std::copy(v, v + 7, out);
          out += 7;
        }
      }
    }
  }
  return grid;
}

}  // namespace qv2x
