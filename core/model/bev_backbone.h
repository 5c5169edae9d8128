// The per-agent ResNet BEV backbone (`backbone_m1`, SPEC §3): BasicBlock levels without
// decoders. With several levels their outputs are concatenated, as OpenCOOD's
// ResNetBEVBackbone does without deblocks, so they must share one resolution.
#ifndef QV2X_CORE_MODEL_BEV_BACKBONE_H_
#define QV2X_CORE_MODEL_BEV_BACKBONE_H_

#include <torch/torch.h>

#include "core/config/model_config.h"
#include "core/model/resnet.h"

namespace qv2x {

class ResNetBevBackboneImpl : public torch::nn::Module {
 public:
  ResNetBevBackboneImpl(const BackboneConfig& cfg, int64_t in_channels);
  torch::Tensor forward(const torch::Tensor& bev);  // [A, C_in, H, W] → [A, C, H/s, W/s]
  int64_t out_channels() const { return out_channels_; }

  ResNetTrunk resnet{nullptr};

 private:
  int64_t out_channels_ = 0;
};
TORCH_MODULE(ResNetBevBackbone);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_BEV_BACKBONE_H_
