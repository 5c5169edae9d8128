// Codebook quantiser of BEV features (SPEC §4). Each of `seg_num` channel segments of a
// feature vector is replaced by one of `dict_size` codewords; with several residual
// levels, level l quantises what levels 0..l-1 left over and the reconstructions add up.
// Parameters: `codewords.<level>` of shape [m, k, C/m] (our own layout; QuantV2X's
// UMGM codebook has a different structure and does not map by name).
#ifndef QV2X_CORE_MODEL_CODEBOOK_H_
#define QV2X_CORE_MODEL_CODEBOOK_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"

namespace qv2x {

// The index of a cell a sparse message left out (codec::kUnsentIndex): it decodes to the
// zero vector, the receiver's "nothing here".
inline constexpr int64_t kUnsentCode = -1;

struct CodebookOutput {
  torch::Tensor reconstruction;  // [N, C, H, W]
  torch::Tensor loss;            // scalar MSE(reconstruction, input.detach())
  torch::Tensor indices;         // [N, L·m, H, W] int64; only in eval mode
};

// The digest of CodebookImpl::Digest() over level tensors [m, k, d] (any device/dtype that
// converts to float32), so a checkpoint's codebook can be checked before it is loaded.
std::string CodewordsDigest(const std::vector<torch::Tensor>& levels);

class CodebookImpl : public torch::nn::Module {
 public:
  explicit CodebookImpl(const CodebookConfig& cfg);

  // Training mode: Gumbel-softmax (hard, straight-through) over −distance/√k, so the
  // gradient reaches the codewords and the input. Eval mode: argmin and table look-up.
  CodebookOutput forward(const torch::Tensor& x);

  // Nearest codeword per segment and level: [N, C, H, W] → [N, L·m, H, W] int64, level
  // major (index l·m + s).
  torch::Tensor Encode(const torch::Tensor& x);
  // Table look-up: indices of any integer dtype, [N, L·m, H, W] → [N, C, H, W]
  // (channels-last in memory). Checks shape and range; kUnsentCode decodes to zeros.
  absl::StatusOr<torch::Tensor> Decode(const torch::Tensor& indices);
  // Indices known to lie in [0, dict_size).
  torch::Tensor DecodeUnchecked(const torch::Tensor& indices);

  // Squared distances ‖x‖² + ‖c‖² − 2⟨x, c⟩ of level `level`: x [m, P, d] → [m, P, k].
  torch::Tensor Distances(const torch::Tensor& x, int64_t level) const;

  // Data-driven start (k-means++ seeding, then `iterations` Lloyd steps) from backbone
  // features [N, C, H, W]: level 0 from the features, each further level from what the
  // levels before it leave over. Positions whose feature vector is all zero (empty BEV
  // cells) are skipped. A qv2x addition: from the N(0, small) init, Adam moves codewords
  // by about lr per step, far too slowly to reach the features' scale in a short stage 2.
  void InitFromFeatures(const torch::Tensor& features, int iterations = 10);

  // 64-bit FNV-1a over the shape and the float32 bytes of every level, as 16 hex digits.
  // Sender and receiver compare it before exchanging indices.
  std::string Digest() const;

  int64_t channels() const { return channels_; }
  int64_t segments() const { return segments_; }
  int64_t dict_size() const { return dict_size_; }
  int64_t levels() const { return static_cast<int64_t>(codewords->size()); }
  const torch::Tensor& level(int64_t l) const { return (*codewords)[l]; }

 private:
  torch::Tensor DecodeImpl(const torch::Tensor& indices, bool has_unsent);
  // [N, C, H, W] → [m, N·H·W, d]
  torch::Tensor ToSegments(const torch::Tensor& x) const;
  // [m, N·H·W, d] → [N, C, H, W]
  torch::Tensor FromSegments(const torch::Tensor& s, const torch::IntArrayRef& shape) const;

  int64_t channels_, segments_, dict_size_, seg_dim_;
  torch::nn::ParameterList codewords{nullptr};
};
TORCH_MODULE(Codebook);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_CODEBOOK_H_
