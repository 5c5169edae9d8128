// The ego half of the model, what the fusion service runs: every agent's features (or
// codebook indices, decoded here) and its warp into the ego frame → PyramidFusion →
// shrink header → cls / reg / dir heads. Children carry QuantV2X's names
// (`pyramid_backbone`, `shrink_conv`, `cls_head`, `reg_head`, `dir_head`, `codebook`).
//
// Head channel order (shared with core/detection): anchor a = class_index · num_yaws +
// yaw_index; cls channel a; reg channels a·7 + k; dir channels a·num_bins + b.
#ifndef QV2X_CORE_MODEL_EGO_FUSION_H_
#define QV2X_CORE_MODEL_EGO_FUSION_H_

#include <torch/torch.h>

#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/geometry/transform.h"
#include "core/model/codebook.h"
#include "core/model/pyramid_fusion.h"
#include "core/model/shrink_header.h"

namespace qv2x {

struct HeadOutput {
  torch::Tensor cls;  // [B, A, H, W]
  torch::Tensor reg;  // [B, 7·A, H, W]
  torch::Tensor dir;  // [B, num_bins·A, H, W]
  // Per pyramid level: [N, 1, H_l, W_l] occupancy logits of every agent in its own frame
  // (before warping).
  std::vector<torch::Tensor> occupancy;
};

// One agent's contribution to a fused frame (the ego first, with the identity warp).
struct AgentMessage {
  torch::Tensor features;  // [C, h, w] float; used when `indices` is undefined
  torch::Tensor indices;   // [L·m, h, w] integer codebook indices
  AffineWarp warp;         // ego grid → this agent's map (CollatedFrame::warp_to_ego)
};

// [N, 2, 3] float tensor of warps.
torch::Tensor WarpTensor(const std::vector<AffineWarp>& warps);

class EgoFusionImpl : public torch::nn::Module {
 public:
  explicit EgoFusionImpl(const StageConfig& cfg, Codebook codebook = nullptr);

  // features [N, C, h, w] (already decoded), record_len: agents per frame, warps [N, 2, 3].
  HeadOutput forward(const torch::Tensor& features, const std::vector<int64_t>& record_len,
                     const torch::Tensor& warps);

  // One frame in inference mode: decodes indices with the codebook, checks that every agent
  // has the same map shape, fuses and runs the heads.
  absl::StatusOr<HeadOutput> Fuse(const std::vector<AgentMessage>& agents);

  bool has_codebook() const { return !codebook.is_empty(); }

  PyramidFusion pyramid_backbone{nullptr};
  ShrinkHeader shrink_conv{nullptr};
  torch::nn::Conv2d cls_head{nullptr}, reg_head{nullptr}, dir_head{nullptr};
  Codebook codebook{nullptr};
};
TORCH_MODULE(EgoFusion);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_EGO_FUSION_H_
