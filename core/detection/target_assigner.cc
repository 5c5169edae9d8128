#include "core/detection/target_assigner.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "core/detection/box_coder.h"

namespace qv2x {

std::vector<LabeledBox> BoxesInAgentFrame(const std::vector<GtObject>& objects,
                                          const Pose& lidar_pose) {
  const Mat4 world_to_agent = RigidInverse(PoseToMatrix(lidar_pose));
  std::vector<LabeledBox> out;
  out.reserve(objects.size());
  for (const GtObject& o : objects) out.push_back({o.cls, TransformBox(world_to_agent, o.box)});
  return out;
}

namespace {

// Enclosing axis-aligned rectangle, computed exactly as qv2x::AxisAlignedBevIou does so that
// the sparse matcher below agrees with it bit for bit.
struct Rect {
  double x0, y0, x1, y1;
};
Rect Enclosing(double x, double y, double l, double w, double yaw) {
  const double c = std::fabs(std::cos(yaw)), s = std::fabs(std::sin(yaw));
  const double hx = (c * l + s * w) / 2, hy = (s * l + c * w) / 2;
  return {x - hx, y - hy, x + hx, y + hy};
}
double RectIou(const Rect& ra, const Rect& rb) {
  const double iw = std::min(ra.x1, rb.x1) - std::max(ra.x0, rb.x0);
  const double ih = std::min(ra.y1, rb.y1) - std::max(ra.y0, rb.y0);
  if (iw <= 0 || ih <= 0) return 0.0;
  const double inter = iw * ih;
  const double uni = (ra.x1 - ra.x0) * (ra.y1 - ra.y0) + (rb.x1 - rb.x0) * (rb.y1 - rb.y0) - inter;
  return uni > 0 ? inter / uni : 0.0;
}

// Clamps a (possibly huge) fractional cell coordinate to [0, n - 1] before the int cast.
int CellIndex(double v, int n) { return static_cast<int>(std::clamp(v, 0.0, n - 1.0)); }

bool UsableBox(const Box3D& b) {
  const double v[7] = {b.x, b.y, b.z, b.l, b.w, b.h, b.yaw};
  for (double x : v) {
    if (!std::isfinite(x)) return false;
  }
  return b.l > 0 && b.w > 0 && b.h > 0;
}

absl::Status CheckGrid(const AnchorGrid& grid) {
  const at::Tensor& a = grid.anchors;
  if (!a.defined() || a.dim() != 4 || a.size(0) != grid.feature_h || a.size(1) != grid.feature_w ||
      a.size(2) != grid.anchors_per_cell() || a.size(3) != 7 ||
      a.scalar_type() != torch::kFloat32 || !a.is_contiguous() || !a.device().is_cpu() ||
      static_cast<int>(grid.pos_threshold.size()) != grid.num_classes ||
      static_cast<int>(grid.neg_threshold.size()) != grid.num_classes ||
      static_cast<int>(grid.class_ids.size()) != grid.num_classes || grid.step_x <= 0 ||
      grid.step_y <= 0) {
    return absl::InvalidArgumentError(
        "anchor grid is malformed: expected a contiguous CPU float tensor [H', W', A, 7] "
        "matching its fields (build it with MakeAnchorGrid)");
  }
  return absl::OkStatus();
}

// Per anchor: label (1 / 0 / -1) and the index into `gt` it regresses to (-1 if none).
struct Matches {
  std::vector<int8_t> label;
  std::vector<int> gt_index;
  int num_positive = 0;
  std::vector<GtAssignment> per_gt;
};

Matches MatchAnchors(const AnchorGrid& grid, const std::vector<LabeledBox>& gt) {
  const int H = grid.feature_h, W = grid.feature_w, A = grid.anchors_per_cell();
  const int64_t n = static_cast<int64_t>(H) * W * A;
  const float* anc = grid.anchors.data_ptr<float>();

  std::vector<double> best_iou(n, 0.0);
  std::vector<int> best_gt(n, -1);
  // Each anchor kind's enclosing half extents (the same in every cell).
  std::vector<double> half_x(A), half_y(A);
  for (int a = 0; a < A; ++a) {
    const Rect r = Enclosing(0, 0, anc[a * 7 + 3], anc[a * 7 + 4], anc[a * 7 + 6]);
    half_x[a] = r.x1;
    half_y[a] = r.y1;
  }

  std::vector<int64_t> forced_anchor(gt.size(), -1);
  Matches m;
  m.per_gt.resize(gt.size());
  for (size_t g = 0; g < gt.size(); ++g) {
    const Box3D& b = gt[g].box;
    const std::optional<int> cls = grid.ClassIndex(gt[g].cls);
    if (!cls || !UsableBox(b)) continue;
    m.per_gt[g].anchor_class = *cls;
    const Rect gr = Enclosing(b.x, b.y, b.l, b.w, b.yaw);
    double gt_best = 0.0;
    int64_t gt_best_idx = -1;
    for (int k = 0; k < grid.num_yaws; ++k) {
      const int a = *cls * grid.num_yaws + k;
      // Cells whose anchor rectangle can overlap the box; one cell of slack either way
      // absorbs float rounding of the centres, the exact test below decides.
      const int c0 = CellIndex(std::ceil((gr.x0 - half_x[a] - grid.first_x) / grid.step_x) - 1, W);
      const int c1 = CellIndex(std::floor((gr.x1 + half_x[a] - grid.first_x) / grid.step_x) + 1, W);
      const int r0 = CellIndex(std::ceil((gr.y0 - half_y[a] - grid.first_y) / grid.step_y) - 1, H);
      const int r1 = CellIndex(std::floor((gr.y1 + half_y[a] - grid.first_y) / grid.step_y) + 1, H);
      for (int row = r0; row <= r1; ++row) {
        for (int col = c0; col <= c1; ++col) {
          const int64_t idx = (static_cast<int64_t>(row) * W + col) * A + a;
          const float* p = anc + idx * 7;
          const double iou = RectIou(Enclosing(p[0], p[1], p[3], p[4], p[6]), gr);
          if (iou <= 0) continue;
          if (iou > best_iou[idx]) {
            best_iou[idx] = iou;
            best_gt[idx] = static_cast<int>(g);
          }
          if (iou > gt_best || (iou == gt_best && idx < gt_best_idx)) {
            gt_best = iou;
            gt_best_idx = idx;
          }
        }
      }
    }
    forced_anchor[g] = gt_best_idx;
    m.per_gt[g].best_iou = gt_best;
    m.per_gt[g].forced_only = gt_best_idx >= 0 && gt_best < grid.pos_threshold[*cls];
  }

  m.label.assign(n, 0);
  m.gt_index.assign(n, -1);
  for (int64_t idx = 0; idx < n; ++idx) {
    const int c = static_cast<int>(idx % A) / grid.num_yaws;
    if (best_gt[idx] >= 0 && best_iou[idx] >= grid.pos_threshold[c]) {
      m.label[idx] = 1;
      m.gt_index[idx] = best_gt[idx];
    } else if (best_iou[idx] >= grid.neg_threshold[c]) {
      m.label[idx] = -1;
    }
  }
  for (size_t g = 0; g < gt.size(); ++g) {
    if (forced_anchor[g] < 0) continue;
    m.label[forced_anchor[g]] = 1;
    m.gt_index[forced_anchor[g]] = static_cast<int>(g);
  }
  for (int64_t idx = 0; idx < n; ++idx) {
    if (m.label[idx] != 1) continue;
    ++m.num_positive;
    m.per_gt[m.gt_index[idx]].anchors.push_back(idx);
  }
  return m;
}

at::Tensor LabelTensor(const AnchorGrid& grid, const Matches& m) {
  at::Tensor labels =
      torch::empty({grid.feature_h, grid.feature_w, grid.anchors_per_cell()}, torch::kFloat32);
  float* out = labels.data_ptr<float>();
  for (size_t i = 0; i < m.label.size(); ++i) out[i] = m.label[i];
  return labels;
}

}  // namespace

absl::StatusOr<FrameTargets> AssignTargets(const AnchorGrid& grid,
                                           const std::vector<LabeledBox>& gt,
                                           const DirConfig& dir) {
  if (absl::Status st = CheckGrid(grid); !st.ok()) return st;
  if (dir.num_bins < 1) {
    return absl::InvalidArgumentError("model.args.dir_args.num_bins must be >= 1");
  }
  const Matches m = MatchAnchors(grid, gt);
  const int H = grid.feature_h, W = grid.feature_w, A = grid.anchors_per_cell();

  FrameTargets t;
  t.num_positive = m.num_positive;
  t.per_gt = m.per_gt;
  t.labels = LabelTensor(grid, m);
  t.reg_targets = torch::zeros({H, W, A, kBoxDims}, torch::kFloat32);
  t.dir_targets = torch::full({H, W, A}, -1, torch::kInt64);
  if (m.num_positive == 0) return t;

  // Encode the positives in one go, in double, through the shared coder.
  std::vector<int64_t> pos;
  pos.reserve(m.num_positive);
  for (size_t i = 0; i < m.label.size(); ++i) {
    if (m.label[i] == 1) pos.push_back(static_cast<int64_t>(i));
  }
  const int64_t p = static_cast<int64_t>(pos.size());
  at::Tensor boxes = torch::empty({p, kBoxDims}, torch::kFloat64);
  double* bp = boxes.data_ptr<double>();
  int64_t* dp = t.dir_targets.data_ptr<int64_t>();
  for (int64_t i = 0; i < p; ++i) {
    const Box3D& b = gt[m.gt_index[pos[i]]].box;
    const double v[kBoxDims] = {b.x, b.y, b.z, b.l, b.w, b.h, b.yaw};
    std::copy(v, v + kBoxDims, bp + i * kBoxDims);
    dp[pos[i]] = DirectionBin(b.yaw, dir);
  }
  const at::Tensor index = torch::from_blob(pos.data(), {p}, torch::kInt64);
  const at::Tensor flat_anchors = grid.anchors.view({-1, kBoxDims});
  const at::Tensor anchors = flat_anchors.index_select(0, index).to(torch::kFloat64);
  const at::Tensor encoded = EncodeBoxes(boxes, anchors).to(torch::kFloat32);
  t.reg_targets.view({-1, kBoxDims}).index_copy_(0, index, encoded);
  return t;
}

absl::StatusOr<BatchTargets> StackTargets(const std::vector<FrameTargets>& frames) {
  if (frames.empty()) return absl::InvalidArgumentError("StackTargets: no frames");
  std::vector<at::Tensor> labels, reg, dir;
  for (size_t i = 0; i < frames.size(); ++i) {
    const FrameTargets& f = frames[i];
    if (!f.labels.defined() || !f.reg_targets.defined() || !f.dir_targets.defined() ||
        f.labels.sizes() != frames[0].labels.sizes() ||
        f.reg_targets.sizes() != frames[0].reg_targets.sizes() ||
        f.dir_targets.sizes() != frames[0].dir_targets.sizes()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("StackTargets: frame %d is empty or differs in shape from frame 0", i));
    }
    labels.push_back(f.labels);
    reg.push_back(f.reg_targets);
    dir.push_back(f.dir_targets);
  }
  return BatchTargets{torch::stack(labels), torch::stack(reg), torch::stack(dir)};
}

std::vector<int> OccupancyLevelStrides(const StageConfig& config) {
  std::vector<int> out;
  int acc = 1;
  for (int s : config.model.fusion_backbone.layer_strides) {
    acc *= s;
    out.push_back(acc);
  }
  return out;
}

std::vector<at::Tensor> OccupancyLabels(const at::Tensor& labels,
                                        const std::vector<int>& level_strides) {
  // [H', W', A] -> [1, 1, H', W']: any positive anchor marks the cell.
  const at::Tensor occ = (labels > 0).any(-1).to(torch::kFloat32).unsqueeze(0).unsqueeze(0);
  std::vector<at::Tensor> out;
  out.reserve(level_strides.size());
  for (int s : level_strides) {
    at::Tensor level = s <= 1 ? occ.clone()
                              : torch::max_pool2d(occ, {s, s}, {s, s}, {0, 0}, {1, 1},
                                                  /*ceil_mode=*/true);
    out.push_back(level.squeeze(0));
  }
  return out;
}

absl::StatusOr<std::vector<at::Tensor>> AgentOccupancyLabels(
    const AnchorGrid& grid, const std::vector<LabeledBox>& gt_in_agent_frame,
    const std::vector<int>& level_strides) {
  if (absl::Status st = CheckGrid(grid); !st.ok()) return st;
  for (int s : level_strides) {
    if (s < 1) return absl::InvalidArgumentError("occupancy level strides must be >= 1");
  }
  const Matches m = MatchAnchors(grid, gt_in_agent_frame);
  return OccupancyLabels(LabelTensor(grid, m), level_strides);
}

}  // namespace qv2x
