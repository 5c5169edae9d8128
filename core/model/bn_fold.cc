#include "core/model/bn_fold.h"

#include <torch/torch.h>

#include <vector>

namespace qv2x {

FoldedLayer FoldBatchNorm(const at::Tensor& weight, const at::Tensor& bias, const BnParams& bn,
                          int64_t out_axis) {
  torch::NoGradGuard no_grad;
  // Double precision, so that folding adds no error beyond the final float rounding.
  const at::Tensor scale =
      bn.weight.to(torch::kFloat64) / torch::sqrt(bn.running_var.to(torch::kFloat64) + bn.eps);
  std::vector<int64_t> shape(weight.dim(), 1);
  shape[out_axis] = scale.size(0);
  FoldedLayer f;
  f.weight = (weight.to(torch::kFloat64) * scale.view(shape)).to(torch::kFloat32);
  const at::Tensor b = bias.defined() ? bias.to(torch::kFloat64) : torch::zeros_like(scale);
  f.bias = ((b - bn.running_mean.to(torch::kFloat64)) * scale + bn.bias.to(torch::kFloat64))
               .to(torch::kFloat32);
  return f;
}

FoldedLayer DeconvAsConv1x1(const at::Tensor& weight, const at::Tensor& bias) {
  torch::NoGradGuard no_grad;
  const int64_t in = weight.size(0), out = weight.size(1), s = weight.size(2);
  FoldedLayer f;
  // [in, out, s, s] → [out, s, s, in] → [out·s², in, 1, 1]
  f.weight = weight.permute({1, 2, 3, 0}).reshape({out * s * s, in, 1, 1}).contiguous();
  const at::Tensor b = bias.defined() ? bias : torch::zeros({out}, weight.options());
  f.bias = b.repeat_interleave(s * s).contiguous();
  return f;
}

}  // namespace qv2x
