#include "core/model/shrink_header.h"

namespace qv2x {

namespace nn = torch::nn;

DoubleConvImpl::DoubleConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                               int64_t padding) {
  double_conv = register_module(
      "double_conv",
      nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding)),
                     nn::ReLU(nn::ReLUOptions(true)),
                     nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1)),
                     nn::ReLU(nn::ReLUOptions(true))));
}

torch::Tensor DoubleConvImpl::forward(const torch::Tensor& x) {
  if (!is_training() && frozen1_.usable() && frozen2_.usable()) return frozen2_(frozen1_(x));
  return double_conv->forward(x);
}

void DoubleConvImpl::Freeze() {
  frozen1_ = FrozenConv(*double_conv->ptr(0)->as<nn::Conv2dImpl>(), nullptr, /*relu=*/true);
  frozen2_ = FrozenConv(*double_conv->ptr(2)->as<nn::Conv2dImpl>(), nullptr, /*relu=*/true);
}

void ShrinkHeaderImpl::Freeze() {
  for (const auto& layer : *layers) layer->as<DoubleConvImpl>()->Freeze();
}

ShrinkHeaderImpl::ShrinkHeaderImpl(const ShrinkConfig& cfg) {
  layers = register_module("layers", nn::ModuleList());
  layers->push_back(DoubleConv(cfg.input_dim, cfg.dim, cfg.kernel_size, cfg.stride, cfg.padding));
}

torch::Tensor ShrinkHeaderImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = x;
  for (const auto& layer : *layers) y = layer->as<DoubleConvImpl>()->forward(y);
  return y;
}

}  // namespace qv2x
