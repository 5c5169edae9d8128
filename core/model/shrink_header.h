// The shrink header (`shrink_conv`, SPEC §3): OpenCOOD's DownsampleConv with one
// DoubleConv — conv k×k (bias) + ReLU, conv 3×3 (bias) + ReLU, no BN.
#ifndef QV2X_CORE_MODEL_SHRINK_HEADER_H_
#define QV2X_CORE_MODEL_SHRINK_HEADER_H_

#include <torch/torch.h>

#include "core/config/model_config.h"
#include "core/model/frozen_conv.h"

namespace qv2x {

class DoubleConvImpl : public torch::nn::Module {
 public:
  DoubleConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding);
  torch::Tensor forward(const torch::Tensor& x);
  void Freeze();  // both conv + ReLU frozen (frozen_conv.h) for eval forwards

  torch::nn::Sequential double_conv{nullptr};

 private:
  FrozenConv frozen1_, frozen2_;
};
TORCH_MODULE(DoubleConv);

class ShrinkHeaderImpl : public torch::nn::Module {
 public:
  explicit ShrinkHeaderImpl(const ShrinkConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);
  void Freeze();

  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(ShrinkHeader);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_SHRINK_HEADER_H_
