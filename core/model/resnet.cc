#include "core/model/resnet.h"

#include <string>

namespace qv2x {
namespace {

namespace nn = torch::nn;

nn::Conv2d Conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups = 1) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).groups(groups).bias(false));
}

nn::BatchNorm2d Bn(int64_t c, double eps) {
  return nn::BatchNorm2d(nn::BatchNorm2dOptions(c).eps(eps));
}

// 1x1 conv with the block's stride + BN: the shortcut when the shape changes.
nn::Sequential Shortcut(int64_t in, int64_t out, int64_t stride, double eps) {
  return nn::Sequential(Conv(in, out, 1, stride), Bn(out, eps));
}

FrozenConv FreezeShortcut(const nn::Sequential& downsample) {
  if (!downsample) return {};
  return FrozenConv(*downsample->ptr(0)->as<nn::Conv2dImpl>(),
                    downsample->ptr(1)->as<nn::BatchNorm2dImpl>(),
                    /*relu=*/false);
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride,
                               bool has_downsample, double bn_eps) {
  conv1 = register_module("conv1", Conv(inplanes, planes, 3, stride));
  bn1 = register_module("bn1", Bn(planes, bn_eps));
  conv2 = register_module("conv2", Conv(planes, planes, 3, 1));
  bn2 = register_module("bn2", Bn(planes, bn_eps));
  if (has_downsample) {
    downsample = register_module("downsample", Shortcut(inplanes, planes, stride, bn_eps));
  }
}

void BasicBlockImpl::Freeze() {
  frozen1_ = FrozenConv(*conv1, bn1.get(), /*relu=*/true);
  frozen2_ = FrozenConv(*conv2, bn2.get(), /*relu=*/false);
  frozen_down_ = FreezeShortcut(downsample);
}

bool BasicBlockImpl::Frozen() const {
  return frozen1_.usable() && frozen2_.usable() && (!downsample || frozen_down_.usable());
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  if (!is_training() && Frozen()) {
    torch::Tensor out = frozen2_(frozen1_(x));
    out += downsample ? frozen_down_(x) : x;
    return out.relu_();
  }
  torch::Tensor out = bn1(conv1(x)).relu_();
  out = bn2(conv2(out));
  out += downsample ? downsample->forward(x) : x;
  return out.relu_();
}

BottleneckImpl::BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride,
                               bool has_downsample, int64_t groups, int64_t width_per_group,
                               double bn_eps) {
  // torchvision's rule: width = int(planes * base_width / 64) * groups.
  const int64_t width = planes * width_per_group / 64 * groups;
  conv1 = register_module("conv1", Conv(inplanes, width, 1, 1));
  bn1 = register_module("bn1", Bn(width, bn_eps));
  conv2 = register_module("conv2", Conv(width, width, 3, stride, groups));
  bn2 = register_module("bn2", Bn(width, bn_eps));
  conv3 = register_module("conv3", Conv(width, planes, 1, 1));
  bn3 = register_module("bn3", Bn(planes, bn_eps));
  if (has_downsample) {
    downsample = register_module("downsample", Shortcut(inplanes, planes, stride, bn_eps));
  }
}

void BottleneckImpl::Freeze() {
  frozen1_ = FrozenConv(*conv1, bn1.get(), /*relu=*/true);
  frozen2_ = FrozenConv(*conv2, bn2.get(), /*relu=*/true);
  frozen3_ = FrozenConv(*conv3, bn3.get(), /*relu=*/false);
  frozen_down_ = FreezeShortcut(downsample);
}

bool BottleneckImpl::Frozen() const {
  return frozen1_.usable() && frozen2_.usable() && frozen3_.usable() &&
         (!downsample || frozen_down_.usable());
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  if (!is_training() && Frozen()) {
    torch::Tensor out = frozen3_(frozen2_(frozen1_(x)));
    out += downsample ? frozen_down_(x) : x;
    return out.relu_();
  }
  torch::Tensor out = bn1(conv1(x)).relu_();
  out = bn2(conv2(out)).relu_();
  out = bn3(conv3(out));
  out += downsample ? downsample->forward(x) : x;
  return out.relu_();
}

ResNetTrunkImpl::ResNetTrunkImpl(const ResNetSpec& spec) {
  int64_t inplanes = spec.inplanes;
  for (size_t level = 0; level < spec.layer_nums.size(); ++level) {
    const int64_t planes = spec.num_filters[level];
    const int64_t stride = spec.layer_strides[level];
    nn::Sequential layer;
    for (int b = 0; b < spec.layer_nums[level]; ++b) {
      const int64_t s = b == 0 ? stride : 1;
      const bool down = b == 0 && (stride != 1 || inplanes != planes);
      if (spec.block == ResNetSpec::Block::kBasic) {
        layer->push_back(BasicBlock(inplanes, planes, s, down, spec.bn_eps));
      } else {
        layer->push_back(
            Bottleneck(inplanes, planes, s, down, spec.groups, spec.width_per_group, spec.bn_eps));
      }
      inplanes = planes;
    }
    layers_.push_back(register_module("layer" + std::to_string(level), layer));
  }
}

void ResNetTrunkImpl::Freeze() {
  for (auto& layer : layers_) {
    for (size_t i = 0; i < layer->size(); ++i) {
      if (auto* b = layer->ptr(i)->as<BasicBlockImpl>()) b->Freeze();
      if (auto* b = layer->ptr(i)->as<BottleneckImpl>()) b->Freeze();
    }
  }
}

std::vector<torch::Tensor> ResNetTrunkImpl::forward(torch::Tensor x) {
  std::vector<torch::Tensor> out;
  out.reserve(layers_.size());
  for (auto& layer : layers_) {
    x = layer->forward(x);
    out.push_back(x);
  }
  return out;
}

}  // namespace qv2x
