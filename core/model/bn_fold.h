// Folding an inference-mode BatchNorm into the conv / linear / transposed conv before it
// (SPEC §7): y = γ (W x + b − μ) / √(σ² + ε) + β  =  W' x + b'.
#ifndef QV2X_CORE_MODEL_BN_FOLD_H_
#define QV2X_CORE_MODEL_BN_FOLD_H_

#include <ATen/core/Tensor.h>

namespace qv2x {

struct BnParams {
  at::Tensor weight, bias, running_mean, running_var;  // [C]
  double eps = 1e-5;
};

struct FoldedLayer {
  at::Tensor weight, bias;  // bias always defined
};

// `out_axis` is the weight's output-channel axis: 0 for Linear [out, in] and Conv2d
// [out, in/g, k, k], 1 for ConvTranspose2d [in, out, k, k] (groups = 1). `bias` may be
// undefined (no bias).
FoldedLayer FoldBatchNorm(const at::Tensor& weight, const at::Tensor& bias, const BnParams& bn,
                          int64_t out_axis);

// A transposed conv with kernel = stride = s, no padding, groups = 1, as the equivalent
// 1x1 conv to out·s² channels (row o·s² + ky·s + kx) whose output is pixel-shuffled by s.
// weight [in, out, s, s], bias [out] → weight [out·s², in, 1, 1], bias [out·s²].
FoldedLayer DeconvAsConv1x1(const at::Tensor& weight, const at::Tensor& bias);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_BN_FOLD_H_
