#include "core/detection/loss.h"

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/detection/box_coder.h"

namespace qv2x {

at::Tensor SigmoidFocalLoss(const at::Tensor& logits, const at::Tensor& targets, double alpha,
                            double gamma) {
  // BCE from logits: max(x, 0) - x t + log(1 + e^-|x|).
  const at::Tensor bce =
      torch::clamp_min(logits, 0) - logits * targets + torch::log1p(torch::exp(-logits.abs()));
  const at::Tensor p = torch::sigmoid(logits);
  const at::Tensor p_t = targets * p + (1 - targets) * (1 - p);
  const at::Tensor alpha_t = targets * alpha + (1 - targets) * (1 - alpha);
  return alpha_t * torch::pow(1 - p_t, gamma) * bce;
}

at::Tensor SmoothL1(const at::Tensor& pred, const at::Tensor& target, double beta) {
  const at::Tensor n = (pred - target).abs();
  if (beta <= 0) return n;
  return torch::where(n < beta, 0.5 * n * n / beta, n - 0.5 * beta);
}

std::pair<at::Tensor, at::Tensor> AddSinDifference(const at::Tensor& pred,
                                                   const at::Tensor& target) {
  const int64_t last = pred.size(-1) - 1;
  const at::Tensor p = pred.narrow(-1, last, 1), t = target.narrow(-1, last, 1);
  const at::Tensor p_enc = torch::sin(p) * torch::cos(t);
  const at::Tensor t_enc = torch::cos(p) * torch::sin(t);
  return {torch::cat({pred.narrow(-1, 0, last), p_enc}, -1),
          torch::cat({target.narrow(-1, 0, last), t_enc}, -1)};
}

void LossTerms::AddCodebook(const at::Tensor& loss, double weight) {
  codebook = loss * weight;
  total = total.defined() ? total + codebook : codebook;
}

std::vector<std::pair<std::string, double>> LossTerms::Values() const {
  std::vector<std::pair<std::string, double>> out;
  const std::pair<const char*, const at::Tensor*> terms[] = {
      {"total", &total}, {"cls", &cls}, {"reg", &reg},
      {"dir", &dir},     {"occ", &occ}, {"codebook", &codebook}};
  for (const auto& [name, t] : terms) {
    if (t->defined()) out.emplace_back(name, t->detach().to(torch::kCPU).item<double>());
  }
  return out;
}

namespace {

std::string Shape(const at::Tensor& t) {
  return t.defined() ? "[" + absl::StrJoin(t.sizes(), ", ") + "]" : "undefined";
}

bool HasShape(const at::Tensor& t, std::initializer_list<int64_t> shape) {
  return t.defined() && t.sizes() == c10::IntArrayRef(shape);
}

}  // namespace

absl::StatusOr<DetectionLoss::PerAnchor> DetectionLoss::PerAnchorTerms(
    const HeadOutputs& out, const BatchTargets& targets) const {
  if (!targets.labels.defined() || targets.labels.dim() != 4) {
    return absl::InvalidArgumentError("DetectionLoss: labels must be [B, H', W', A], got " +
                                      Shape(targets.labels));
  }
  const int64_t B = targets.labels.size(0), H = targets.labels.size(1), W = targets.labels.size(2),
                A = targets.labels.size(3);
  const int64_t nb = dir_.num_bins;
  // cls_head class_vector: C logits per anchor, anchors class-major (a = c·yaws + yaw).
  const int64_t C = out.cls.defined() && out.cls.dim() == 4 && A > 0 && out.cls.size(1) > A &&
                            out.cls.size(1) % A == 0 && A % (out.cls.size(1) / A) == 0
                        ? out.cls.size(1) / A
                        : 1;
  if (!HasShape(out.cls, {B, A * C, H, W}) || !HasShape(out.reg, {B, kBoxDims * A, H, W}) ||
      !HasShape(out.dir, {B, nb * A, H, W}) ||
      !HasShape(targets.reg_targets, {B, H, W, A, kBoxDims}) ||
      !HasShape(targets.dir_targets, {B, H, W, A})) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "DetectionLoss: shapes disagree with labels %s (num_bins %d): cls %s, reg %s, dir %s, "
        "reg_targets %s, dir_targets %s",
        Shape(targets.labels), nb, Shape(out.cls), Shape(out.reg), Shape(out.dir),
        Shape(targets.reg_targets), Shape(targets.dir_targets)));
  }
  try {
    const auto dev = out.cls.device();
    const at::Tensor labels = targets.labels.to(dev).reshape({B, -1});
    const at::Tensor pos = labels > 0;
    const at::Tensor cared = labels >= 0;
    // Each frame normalised by its own positive count.
    const at::Tensor norm = pos.sum(1, /*keepdim=*/true).to(out.cls.scalar_type()).clamp_min(1.0);
    const at::Tensor pos_w = pos.to(out.cls.scalar_type()) / norm;  // [B, N]
    const double per_frame = 1.0 / static_cast<double>(B);

    PerAnchor t;
    const at::Tensor cls_w = cared.to(out.cls.scalar_type()) / norm;
    at::Tensor focal;  // [B, N]
    if (C == 1) {
      const at::Tensor cls_logits = out.cls.permute({0, 2, 3, 1}).reshape({B, -1});
      focal = SigmoidFocalLoss(cls_logits, pos.to(cls_logits.scalar_type()), loss_.cls_alpha,
                               loss_.cls_gamma);
    } else {
      // A positive anchor's target is its own class (anchors match objects of their class).
      const at::Tensor cls_logits = out.cls.permute({0, 2, 3, 1}).reshape({B, -1, C});
      const at::Tensor anchor_class =
          torch::arange(A, torch::TensorOptions().dtype(torch::kInt64).device(dev))
              .div(A / C, "floor")
              .repeat({H * W});  // [N]
      const at::Tensor target = torch::one_hot(anchor_class, C).to(cls_logits.scalar_type()) *
                                pos.unsqueeze(-1).to(cls_logits.scalar_type());
      focal = SigmoidFocalLoss(cls_logits, target, loss_.cls_alpha, loss_.cls_gamma).sum(-1);
    }
    t.cls = focal * cls_w * (loss_.cls_weight * per_frame);

    const at::Tensor reg_pred = out.reg.permute({0, 2, 3, 1}).reshape({B, -1, kBoxDims});
    const at::Tensor reg_tgt = targets.reg_targets.to(dev).reshape({B, -1, kBoxDims});
    const auto [p_sin, t_sin] = AddSinDifference(reg_pred, reg_tgt);
    t.reg = SmoothL1(p_sin, t_sin, loss_.reg_beta).sum(-1) * pos_w * (loss_.reg_weight * per_frame);

    const at::Tensor dir_logits = out.dir.permute({0, 2, 3, 1}).reshape({B, -1, nb});
    const at::Tensor dir_tgt = targets.dir_targets.to(dev).reshape({B, -1}).clamp_min(0);
    const at::Tensor nll =
        -torch::log_softmax(dir_logits, -1).gather(-1, dir_tgt.unsqueeze(-1)).squeeze(-1);
    t.dir = nll * pos_w * (loss_.dir_weight * per_frame);
    return t;
  } catch (const c10::Error& e) {
    return absl::InternalError(std::string("DetectionLoss: ") + e.what_without_backtrace());
  }
}

absl::StatusOr<LossTerms> DetectionLoss::operator()(const HeadOutputs& out,
                                                    const BatchTargets& targets,
                                                    const OccupancyInputs* occupancy) const {
  absl::StatusOr<PerAnchor> per_anchor = PerAnchorTerms(out, targets);
  if (!per_anchor.ok()) return per_anchor.status();
  try {
    LossTerms terms;
    terms.cls = per_anchor->cls.sum();
    terms.reg = per_anchor->reg.sum();
    terms.dir = per_anchor->dir.sum();
    terms.total = terms.cls + terms.reg + terms.dir;
    if (occupancy != nullptr) {
      absl::StatusOr<at::Tensor> occ = Occupancy(*occupancy);
      if (!occ.ok()) return occ.status();
      terms.occ = *occ;
      terms.total = terms.total + terms.occ;
    }
    return terms;
  } catch (const c10::Error& e) {
    return absl::InternalError(std::string("DetectionLoss: ") + e.what_without_backtrace());
  }
}

absl::StatusOr<std::vector<LossTerms>> DetectionLoss::ByAnchorClass(const HeadOutputs& out,
                                                                    const BatchTargets& targets,
                                                                    int anchors_per_class) const {
  absl::StatusOr<PerAnchor> per_anchor = PerAnchorTerms(out, targets);
  if (!per_anchor.ok()) return per_anchor.status();
  const int64_t A = targets.labels.size(3);
  if (anchors_per_class < 1 || A % anchors_per_class != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("DetectionLoss: %d anchors per cell do not split into classes of %d", A,
                        anchors_per_class));
  }
  const int64_t classes = A / anchors_per_class;
  try {
    // [B, H'·W'·A] -> [B·H'·W', classes, anchors_per_class], summed to one value per class.
    auto split = [&](const at::Tensor& t) {
      return t.reshape({-1, classes, anchors_per_class}).sum(at::IntArrayRef{0, 2});
    };
    const at::Tensor cls = split(per_anchor->cls), reg = split(per_anchor->reg),
                     dir = split(per_anchor->dir);
    std::vector<LossTerms> out_terms(classes);
    for (int64_t c = 0; c < classes; ++c) {
      LossTerms& t = out_terms[c];
      t.cls = cls[c];
      t.reg = reg[c];
      t.dir = dir[c];
      t.total = t.cls + t.reg + t.dir;
    }
    return out_terms;
  } catch (const c10::Error& e) {
    return absl::InternalError(std::string("DetectionLoss: ") + e.what_without_backtrace());
  }
}

absl::StatusOr<at::Tensor> DetectionLoss::Occupancy(const OccupancyInputs& occ) const {
  const size_t levels = occ.logits.size();
  if (levels == 0 || occ.labels.size() != levels) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "occupancy loss: %d logit levels but %d label levels", levels, occ.labels.size()));
  }
  if (levels > loss_.pyramid_weights.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "loss.args.pyramid weights: %d given for %d levels", loss_.pyramid_weights.size(), levels));
  }
  const at::Tensor& first = occ.logits[0];
  if (!first.defined() || first.dim() != 4 || first.size(1) != 1) {
    return absl::InvalidArgumentError("occupancy loss: level 0 logits must be [N, 1, H, W], got " +
                                      Shape(first));
  }
  const int64_t agents = first.size(0);
  try {
    at::Tensor total;
    for (size_t l = 0; l < levels; ++l) {
      const at::Tensor& logits = occ.logits[l];
      if (!logits.defined() || logits.dim() != 4 || logits.size(0) != agents ||
          logits.size(1) != 1 || !occ.labels[l].defined() ||
          occ.labels[l].sizes() != logits.sizes()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "occupancy loss: level %d logits %s and labels %s must both be [%d, 1, H, W]", l,
            Shape(logits), Shape(occ.labels[l]), agents));
      }
      const at::Tensor x = logits.reshape({agents, -1});
      const at::Tensor y =
          occ.labels[l].to(logits.device(), logits.scalar_type()).reshape({agents, -1});
      const at::Tensor norm = (y > 0).sum(1, /*keepdim=*/true).to(x.scalar_type()).clamp_min(1.0);
      const at::Tensor term =
          (SigmoidFocalLoss(x, y, loss_.cls_alpha, loss_.cls_gamma) / norm).sum() *
          (loss_.pyramid_weights[l] * loss_.cls_weight / agents);
      total = total.defined() ? total + term : term;
    }
    return total;
  } catch (const c10::Error& e) {
    return absl::InternalError(std::string("occupancy loss: ") + e.what_without_backtrace());
  }
}

}  // namespace qv2x
