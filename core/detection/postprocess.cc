#include "core/detection/postprocess.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/detection/box_coder.h"
#include "core/detection/nms.h"

namespace qv2x {

bool BevInsideRange(const Box3D& b, const std::array<double, 6>& range) {
  for (const Vec2& c : BevCorners(b)) {
    if (c.x < range[0] || c.x > range[3] || c.y < range[1] || c.y > range[4]) return false;
  }
  return true;
}

namespace {

std::string Shape(const at::Tensor& t) {
  return t.defined() ? "[" + absl::StrJoin(t.sizes(), ", ") + "]" : "undefined";
}

// Drops a leading batch dimension of 1.
at::Tensor Unbatch(const at::Tensor& t) {
  return t.defined() && t.dim() == 4 && t.size(0) == 1 ? t[0] : t;
}

bool HasShape(const at::Tensor& t, std::initializer_list<int64_t> shape) {
  return t.defined() && t.sizes() == c10::IntArrayRef(shape);
}

absl::Status CheckConfig(const PostprocessConfig& pp, const DirConfig& dir) {
  if (pp.max_num < 1) return absl::InvalidArgumentError("postprocess.max_num must be >= 1");
  if (dir.num_bins < 1) {
    return absl::InvalidArgumentError("model.args.dir_args.num_bins must be >= 1");
  }
  const auto& r = pp.gt_range;
  if (!(r[3] > r[0] && r[4] > r[1])) {
    return absl::InvalidArgumentError(
        absl::StrFormat("postprocess.gt_range: empty x/y range [%g, %g, %g, %g, %g, %g]", r[0],
                        r[1], r[2], r[3], r[4], r[5]));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<Detection>> PostProcess(const AnchorGrid& grid, const at::Tensor& cls_in,
                                                   const at::Tensor& reg_in,
                                                   const at::Tensor& dir_in,
                                                   const PostprocessConfig& config,
                                                   const DirConfig& dir_config) {
  if (absl::Status st = CheckConfig(config, dir_config); !st.ok()) return st;
  const at::Tensor cls = Unbatch(cls_in), reg = Unbatch(reg_in), dir = Unbatch(dir_in);
  const int64_t A = grid.anchors_per_cell(), H = grid.feature_h, W = grid.feature_w;
  const int64_t nb = dir_config.num_bins;
  const int64_t C = static_cast<int64_t>(grid.class_ids.size());
  // One logit per anchor, or (cls_head: class_vector) a class vector per anchor.
  const bool class_vector = C > 1 && HasShape(cls, {A * C, H, W});
  if (!(class_vector || HasShape(cls, {A, H, W})) || !HasShape(reg, {kBoxDims * A, H, W}) ||
      !HasShape(dir, {nb * A, H, W}) || !grid.anchors.defined() ||
      grid.anchors.numel() != A * H * W * kBoxDims) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "PostProcess: expected cls [%d or %d, %d, %d], reg [%d, %d, %d], dir [%d, %d, %d]; got "
        "%s, %s, %s",
        A, A * C, H, W, kBoxDims * A, H, W, nb * A, H, W, Shape(cls_in), Shape(reg_in),
        Shape(dir_in)));
  }
  try {
    torch::NoGradGuard no_grad;
    // Flattened in (row, col, anchor) order, the anchors tensor's order. A class vector's
    // score is its most likely class's, and that class names the box.
    const at::Tensor probs = torch::sigmoid(cls.to(torch::kFloat32)).permute({1, 2, 0});
    at::Tensor scores, labels;
    if (class_vector) {
      std::tie(scores, labels) = probs.reshape({-1, C}).max(1);
    } else {
      scores = probs.reshape(-1);
    }
    at::Tensor idx = torch::nonzero(scores > config.score_threshold).squeeze(1);
    at::Tensor cand = scores.index_select(0, idx);
    if (idx.numel() > config.max_num) {
      const auto top = torch::topk(cand, config.max_num);
      cand = std::get<0>(top);
      idx = idx.index_select(0, std::get<1>(top));
    }
    const at::Tensor label_cpu =
        class_vector ? labels.index_select(0, idx).to(torch::kCPU, torch::kInt64).contiguous()
                     : at::Tensor();
    if (idx.numel() == 0) return std::vector<Detection>{};

    const at::Tensor deltas = reg.permute({1, 2, 0})
                                  .reshape({-1, kBoxDims})
                                  .index_select(0, idx)
                                  .to(torch::kCPU, torch::kFloat64);
    const at::Tensor bins =
        dir.permute({1, 2, 0}).reshape({-1, nb}).index_select(0, idx).argmax(-1).cpu();
    const at::Tensor idx_cpu = idx.cpu().contiguous();
    const at::Tensor anchors =
        grid.anchors.view({-1, kBoxDims}).index_select(0, idx_cpu).to(torch::kFloat64);
    at::Tensor boxes = DecodeBoxes(deltas, anchors);
    boxes.select(1, 6).copy_(ApplyDirectionBins(boxes.select(1, 6), bins, dir_config));
    boxes = boxes.contiguous();
    const at::Tensor cand_cpu = cand.to(torch::kCPU, torch::kFloat32).contiguous();

    const double* bp = boxes.data_ptr<double>();
    const int64_t* ip = idx_cpu.data_ptr<int64_t>();
    const float* sp = cand_cpu.data_ptr<float>();
    std::vector<Box3D> decoded;
    std::vector<float> decoded_scores;
    std::vector<ObjectClass> decoded_cls;
    for (int64_t i = 0; i < idx_cpu.numel(); ++i) {
      const double* v = bp + i * kBoxDims;
      if (!std::all_of(v, v + kBoxDims, [](double x) { return std::isfinite(x); }) ||
          !(v[3] > 0 && v[4] > 0 && v[5] > 0)) {
        continue;
      }
      decoded.push_back({v[0], v[1], v[2], v[3], v[4], v[5], v[6]});
      decoded_scores.push_back(sp[i]);
      decoded_cls.push_back(class_vector ? grid.class_ids[label_cpu.data_ptr<int64_t>()[i]]
                                         : grid.class_ids[(ip[i] % A) / grid.num_yaws]);
    }

    std::vector<Detection> out;
    for (int k : RotatedBevNms(decoded, decoded_scores, config.nms_thresh)) {
      if (!BevInsideRange(decoded[k], config.gt_range)) continue;
      out.push_back({decoded_cls[k], decoded[k], decoded_scores[k]});
    }
    return out;
  } catch (const c10::Error& e) {
    return absl::InternalError(std::string("PostProcess: ") + e.what_without_backtrace());
  }
}

absl::StatusOr<std::vector<std::vector<Detection>>> PostProcessBatch(
    const AnchorGrid& grid, const HeadOutputs& out, const PostprocessConfig& config,
    const DirConfig& dir_config) {
  if (!out.cls.defined() || out.cls.dim() != 4 || !out.reg.defined() || out.reg.dim() != 4 ||
      !out.dir.defined() || out.dir.dim() != 4 || out.reg.size(0) != out.cls.size(0) ||
      out.dir.size(0) != out.cls.size(0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("PostProcessBatch: cls %s, reg %s, dir %s must be 4-D with one batch size",
                        Shape(out.cls), Shape(out.reg), Shape(out.dir)));
  }
  std::vector<std::vector<Detection>> frames;
  for (int64_t b = 0; b < out.cls.size(0); ++b) {
    absl::StatusOr<std::vector<Detection>> f =
        PostProcess(grid, out.cls[b], out.reg[b], out.dir[b], config, dir_config);
    if (!f.ok()) return f.status();
    frames.push_back(*std::move(f));
  }
  return frames;
}

}  // namespace qv2x
