// ResNet building blocks shared by the per-agent BEV backbone (BasicBlock) and the
// PyramidFusion trunk (ResNeXt Bottleneck with expansion 1). Parameter names follow
// torchvision / OpenCOOD (conv1, bn1, ..., downsample.0 / downsample.1) so that QuantV2X
// state_dicts map onto them by name.
#ifndef QV2X_CORE_MODEL_RESNET_H_
#define QV2X_CORE_MODEL_RESNET_H_

#include <torch/torch.h>

#include <vector>

#include "core/model/frozen_conv.h"

namespace qv2x {

// conv3x3 → BN → ReLU → conv3x3 → BN, plus identity (or 1x1 conv + BN), → ReLU.
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride, bool downsample, double bn_eps);
  torch::Tensor forward(const torch::Tensor& x);
  // Eval forwards then run the frozen convs (frozen_conv.h) while they stay usable.
  void Freeze();

 private:
  bool Frozen() const;

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
  FrozenConv frozen1_, frozen2_, frozen_down_;
};
TORCH_MODULE(BasicBlock);

// ResNeXt bottleneck with expansion 1: 1x1 (inplanes → width) → grouped 3x3 with the
// stride (width → width) → 1x1 (width → planes), width = planes·width_per_group/64·groups.
class BottleneckImpl : public torch::nn::Module {
 public:
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride, bool downsample, int64_t groups,
                 int64_t width_per_group, double bn_eps);
  torch::Tensor forward(const torch::Tensor& x);
  void Freeze();  // as BasicBlockImpl::Freeze

 private:
  bool Frozen() const;

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
  FrozenConv frozen1_, frozen2_, frozen3_, frozen_down_;
};
TORCH_MODULE(Bottleneck);

struct ResNetSpec {
  enum class Block { kBasic, kBottleneck } block = Block::kBasic;
  std::vector<int> layer_nums, layer_strides, num_filters;
  int64_t inplanes = 64;
  int64_t groups = 1, width_per_group = 64;  // bottleneck only
  double bn_eps = 1e-5;
};

// OpenCOOD's ResNetModified: levels layer0, layer1, ... (no stem); forward returns every
// level's output, finest first.
class ResNetTrunkImpl : public torch::nn::Module {
 public:
  explicit ResNetTrunkImpl(const ResNetSpec& spec);
  std::vector<torch::Tensor> forward(torch::Tensor x);
  int64_t num_levels() const { return static_cast<int64_t>(layers_.size()); }
  // Runs a single level (levels must be run in order).
  torch::Tensor RunLevel(int64_t level, const torch::Tensor& x) {
    return layers_[level]->forward(x);
  }
  void Freeze();  // every block's

 private:
  std::vector<torch::nn::Sequential> layers_;
};
TORCH_MODULE(ResNetTrunk);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_RESNET_H_
