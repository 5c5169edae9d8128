// PyramidFusion (SPEC §3, `pyramid_backbone`): a ResNeXt trunk run on every agent's map;
// at each level an occupancy head scores every agent's cells, features and scores are
// warped into the ego frame, fused with a per-pixel softmax over agents, then every level
// is decoded back to the input resolution and concatenated.
#ifndef QV2X_CORE_MODEL_PYRAMID_FUSION_H_
#define QV2X_CORE_MODEL_PYRAMID_FUSION_H_

#include <torch/torch.h>

#include <vector>

#include "core/config/model_config.h"
#include "core/model/frozen_conv.h"
#include "core/model/resnet.h"

namespace qv2x {

// Samples every agent's map in the ego frame: x [n, C, H, W], warps [n, 2, 3] (normalised
// affine_grid matrices, ego grid → agent map, align_corners = false), bilinear, zeros
// outside. Agents whose warp is exactly the identity are passed through unchanged.
torch::Tensor WarpToEgo(const torch::Tensor& x, const torch::Tensor& warps);

// Fuses each frame's agents (record_len[b] consecutive rows of x, ego first): warped score
// 0 → −inf, softmax over agents per pixel (NaN → 0), Σ feature · weight. x [N, C, H, W],
// score [N, 1, H, W], warps [N, 2, 3] → [B, C, H, W].
torch::Tensor WeightedFuse(const torch::Tensor& x, const torch::Tensor& score,
                           const std::vector<int64_t>& record_len, const torch::Tensor& warps);

struct PyramidOutput {
  torch::Tensor fused;                   // [B, Σ num_upsample_filters, H, W]
  std::vector<torch::Tensor> occupancy;  // per level: [N, 1, H_l, W_l] logits, agent frames
};

class PyramidFusionImpl : public torch::nn::Module {
 public:
  PyramidFusionImpl(const PyramidConfig& cfg, int64_t in_channels);

  // x [N, C_in, H, W]: every agent of every frame; record_len: agents per frame;
  // warps [N, 2, 3]: each agent's warp into its frame's ego.
  PyramidOutput forward(const torch::Tensor& x, const std::vector<int64_t>& record_len,
                        const torch::Tensor& warps);
  int64_t out_channels() const { return out_channels_; }
  int64_t num_levels() const { return static_cast<int64_t>(heads_.size()); }
  // Eval forwards then run the trunk, the occupancy heads and the deblocks (BatchNorm and
  // ReLU folded) frozen (frozen_conv.h), while those stay usable.
  void Freeze();
  // Level l's occupancy head on one agent's features and decoder on the fused map, as
  // forward runs them (frozen or plain).
  torch::Tensor Head(int64_t level, const torch::Tensor& f);
  torch::Tensor Deblock(int64_t level, const torch::Tensor& fused);

  ResNetTrunk resnet{nullptr};
  torch::nn::ModuleList deblocks{nullptr};

 private:
  std::vector<torch::nn::Conv2d> heads_;  // single_head_<i>
  std::vector<FrozenConv> frozen_heads_, frozen_deblocks_;
  int64_t out_channels_ = 0;
};
TORCH_MODULE(PyramidFusion);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_PYRAMID_FUSION_H_
