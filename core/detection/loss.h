// Detection losses (SPEC §3 "Loss"): sigmoid focal classification, smooth-L1 regression
// with sin-difference yaw, direction softmax cross-entropy, and the stage-1 pyramid
// occupancy focal loss. All follow OpenCOOD/HEAL's normalisation: each frame's terms are
// divided by that frame's positive count (at least 1), summed and divided by the batch.
#ifndef QV2X_CORE_DETECTION_LOSS_H_
#define QV2X_CORE_DETECTION_LOSS_H_

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/detection/head_outputs.h"
#include "core/detection/target_assigner.h"

namespace qv2x {

// Elementwise sigmoid focal loss of logits against 0/1 targets (same shape), unweighted:
// -α_t (1 - p_t)^γ log p_t, computed from logits for stability.
at::Tensor SigmoidFocalLoss(const at::Tensor& logits, const at::Tensor& targets, double alpha,
                            double gamma);

// Elementwise smooth-L1: 0.5 d² / β where |d| < β, else |d| - 0.5 β (β = 0: plain L1).
at::Tensor SmoothL1(const at::Tensor& pred, const at::Tensor& target, double beta);

// Sin-difference on the last channel of [..., 7] tensors: pred's yaw becomes
// sin(p)cos(t), target's cos(p)sin(t), so their difference is sin(p - t) and a yaw error
// of θ and θ + π cost the same (the direction loss separates them).
std::pair<at::Tensor, at::Tensor> AddSinDifference(const at::Tensor& pred,
                                                   const at::Tensor& target);

// Per pyramid level l: every agent's occupancy logits in its own frame and the matching
// labels (OccupancyLabels of each agent stacked), both [N_agents, 1, H_l, W_l].
struct OccupancyInputs {
  std::vector<at::Tensor> logits;
  std::vector<at::Tensor> labels;
};

// Scalar loss terms; undefined tensors are terms that were not computed.
struct LossTerms {
  at::Tensor total;
  at::Tensor cls, reg, dir, occ;
  at::Tensor codebook;  // filled by callers (stage 2 / 3) through AddCodebook

  // Adds weight × loss as the codebook term and to the total.
  void AddCodebook(const at::Tensor& loss, double weight);
  // Defined terms by name ("total", "cls", "reg", "dir", "occ", "codebook") as doubles.
  std::vector<std::pair<std::string, double>> Values() const;
};

class DetectionLoss {
 public:
  DetectionLoss(const LossConfig& loss, const DirConfig& dir) : loss_(loss), dir_(dir) {}

  // cls + reg + dir (+ occ when `occupancy` is given). Targets move to the outputs' device.
  // Fails with a message naming the mismatch when shapes disagree.
  absl::StatusOr<LossTerms> operator()(const HeadOutputs& out, const BatchTargets& targets,
                                       const OccupancyInputs* occupancy = nullptr) const;

  // cls, reg and dir split by anchor class (anchor a is class a / anchors_per_class, the
  // anchors.h layout): element c holds class c's share of each term, with the same
  // per-frame normalisation, so the shares add up to operator()'s terms.
  absl::StatusOr<std::vector<LossTerms>> ByAnchorClass(const HeadOutputs& out,
                                                       const BatchTargets& targets,
                                                       int anchors_per_class) const;

  // Σ_l pyramid_weights[l] · cls_weight · Σ_agents focal(level l) / positives(agent, l),
  // divided by the number of agents.
  absl::StatusOr<at::Tensor> Occupancy(const OccupancyInputs& occupancy) const;

 private:
  // Each anchor's weighted contribution to cls, reg and dir, [B, H'·W'·A] each.
  struct PerAnchor {
    at::Tensor cls, reg, dir;
  };
  absl::StatusOr<PerAnchor> PerAnchorTerms(const HeadOutputs& out,
                                           const BatchTargets& targets) const;

  LossConfig loss_;
  DirConfig dir_;
};

}  // namespace qv2x

#endif  // QV2X_CORE_DETECTION_LOSS_H_
