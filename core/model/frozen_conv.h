// A convolution frozen for inference (SPEC §11 speed): the BatchNorm after it folded into
// its weights and bias, the ReLU after it fused, and, where LibTorch's oneDNN offers it,
// the weights reordered once into oneDNN's blocked layout (per input size) instead of at
// every call. Eval-mode forwards use it while none of the parameters it was made from has
// changed since (their version counters say so); training, a later load_state_dict or an
// optimiser step sends the module back to its plain layers.
#ifndef QV2X_CORE_MODEL_FROZEN_CONV_H_
#define QV2X_CORE_MODEL_FROZEN_CONV_H_

#include <torch/torch.h>

#include <memory>
#include <utility>
#include <vector>

namespace qv2x {

class FrozenConv {
 public:
  FrozenConv() = default;
  // conv [→ bn] [→ ReLU]. `bn` may be null.
  FrozenConv(const torch::nn::Conv2dImpl& conv, const torch::nn::BatchNorm2dImpl* bn, bool relu);
  // A transposed conv [→ bn] [→ ReLU]. With kernel = stride and no padding (the pyramid's
  // decoders) it runs as one matrix product and a pixel interleave.
  FrozenConv(const torch::nn::ConvTranspose2dImpl& deconv, const torch::nn::BatchNorm2dImpl* bn,
             bool relu);

  // Made, and none of its source parameters or buffers changed since.
  bool usable() const;
  torch::Tensor operator()(const torch::Tensor& x) const;

 private:
  struct PackCache;
  void Track(const torch::Tensor& t) { sources_.emplace_back(t, t._version()); }
  void Fold(const torch::Tensor& weight, const torch::Tensor& bias,
            const torch::nn::BatchNorm2dImpl* bn, int64_t out_axis);

  torch::Tensor weight_, bias_;
  torch::Tensor tiled_weight_, tiled_bias_;  // transposed, kernel = stride: [in, s·s·out]
  std::vector<int64_t> stride_, padding_, dilation_;
  int64_t groups_ = 1;
  bool relu_ = false, transposed_ = false;
  std::vector<std::pair<torch::Tensor, int64_t>> sources_;  // parameter, version at folding
  std::shared_ptr<PackCache> packed_;                       // null: plain conv2d
};

// Whether FrozenConv packs weights for oneDNN (default on where LibTorch registers the
// packed convolution). Off gives the folded and fused path on LibTorch's own conv2d.
void SetPackedConvolutions(bool on);
bool PackedConvolutionsAvailable();

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_FROZEN_CONV_H_
