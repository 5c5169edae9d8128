// The whole detector for training and offline inference: AgentEncoder + EgoFusion
// sharing one codebook. Its state_dict names are QuantV2X's (docs/checkpoint-format.md):
// encoder_m1, backbone_m1, codebook, pyramid_backbone, shrink_conv, cls_head, reg_head,
// dir_head. For model users only: this header pulls in <torch/torch.h>.
#ifndef QV2X_CORE_MODEL_DETECTOR_H_
#define QV2X_CORE_MODEL_DETECTOR_H_

#include <torch/torch.h>

#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/model/agent_encoder.h"
#include "core/model/ego_fusion.h"
#include "core/voxel/pillars.h"

namespace qv2x {

struct DetectorOutput {
  torch::Tensor cls, reg, dir;           // [B, A | 7A | bins·A, H, W], see ego_fusion.h
  std::vector<torch::Tensor> occupancy;  // per level [N, 1, H_l, W_l], agent frames
  torch::Tensor codebook_loss;           // scalar; undefined without a codebook
  std::vector<int64_t> record_len;       // agents fused per frame (N = Σ record_len)
};

class DetectorImpl : public torch::nn::Module {
 public:
  explicit DetectorImpl(const StageConfig& cfg);

  // A batch of collated frames. `ego_only` keeps only each frame's ego (the
  // no-cooperation baseline with the same weights). Training mode runs the codebook's
  // Gumbel path; eval mode quantises with argmin exactly as the services do.
  DetectorOutput forward(const std::vector<const CollatedFrame*>& frames, bool ego_only = false);
  DetectorOutput forward(const CollatedFrame& frame, bool ego_only = false) {
    return forward(std::vector<const CollatedFrame*>{&frame}, ego_only);
  }

  // Inference from now on runs the convolutions frozen: BatchNorm folded, ReLU fused,
  // weights packed (frozen_conv.h). Call after eval() and loading; training or loading
  // new weights later returns the affected layers to the plain path by themselves.
  void FreezeForInference();

  // The two halves, sharing this detector's parameters.
  AgentEncoder agent_encoder() const { return agent_encoder_; }
  EgoFusion ego_fusion() const { return ego_fusion_; }
  bool has_codebook() const { return !codebook_.is_empty(); }
  Codebook codebook() const { return codebook_; }

 private:
  Codebook codebook_{nullptr};
  AgentEncoder agent_encoder_{nullptr};
  EgoFusion ego_fusion_{nullptr};
};
TORCH_MODULE(Detector);

// Validates the config and builds the model (random init from the current torch seed).
absl::StatusOr<Detector> MakeDetector(const StageConfig& cfg);
absl::StatusOr<AgentEncoder> MakeAgentEncoder(const StageConfig& cfg);
absl::StatusOr<EgoFusion> MakeEgoFusion(const StageConfig& cfg);

// forward() with LibTorch errors and malformed frames turned into a status.
absl::StatusOr<DetectorOutput> RunDetector(Detector& model,
                                           const std::vector<const CollatedFrame*>& frames,
                                           bool ego_only = false);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_DETECTOR_H_
