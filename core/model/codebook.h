// Codebook quantiser of BEV features (SPEC §4). Each of `seg_num` channel segments of a
// feature vector is replaced by one of `dict_size` codewords; the indices are what agents
// send. Two variants (CodebookConfig::variant):
//  - qv2x: with several residual levels, level l quantises what levels 0..l-1 left over and
//    the reconstructions add up. Parameters `codewords.<level>` [m, k, C/m].
//  - umgm: QuantV2X's multi-level codebook, under QuantV2X's own names, so that its
//    checkpoints load as they are. Per level i a codebook C_i [m, k, C/m] and Linear(C, C)
//    heads: the sender quantises quantizationHead_i(z_i), z_i = latentStageEncoder_i(x_i),
//    and passes x_{i+1} = latentHead_i(z_i) − C_i[code_i] on; the receiver decodes from the
//    last level back, q_i = dequantizationHead_i(C_i[code_i]) (+ sideHead_i(r) below the
//    last), r = restoreHead_i(q_i). C_i is stored under three names, as QuantV2X's
//    state_dict has it: `_encoders.i._quantizer._codebook` (the parameter) and
//    `_encoders.i._dequantizer._codebook`, `_decoders.i._dequantizer._codebook` (the same
//    tensor). Decoding takes the argmin codewords (QuantV2X's own evaluation decodes
//    Gumbel-sampled ones: docs/checkpoint-format.md).
#ifndef QV2X_CORE_MODEL_CODEBOOK_H_
#define QV2X_CORE_MODEL_CODEBOOK_H_

#include <torch/torch.h>

#include <functional>
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

// The digest of CodebookImpl::Digest() from the codebook's tensors by their names relative
// to the codebook (`codewords.0`, `_encoders.0._quantizer._codebook`, ...; any device or
// dtype that converts to float32), so a checkpoint's codebook can be checked before it is
// loaded. Empty when `find` knows no codebook.
using TensorLookup = std::function<const torch::Tensor*(const std::string& name)>;
std::string CodebookTensorsDigest(const TensorLookup& find);

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
  bool umgm() const { return !heads_.empty(); }

  // Data-driven start (k-means++ seeding, then `iterations` Lloyd steps) from backbone
  // features [N, C, H, W]: level 0 from the features, each further level from what the
  // levels before it leave over. Positions whose feature vector is all zero (empty BEV
  // cells) are skipped. A qv2x addition: from the N(0, small) init, Adam moves codewords
  // by about lr per step, far too slowly to reach the features' scale in a short stage 2.
  void InitFromFeatures(const torch::Tensor& features, int iterations = 10);

  // 64-bit FNV-1a over the shape and the float32 bytes of every level (umgm: then every
  // head's weight and bias, which the indices' meaning depends on too), as 16 hex digits.
  // Sender and receiver compare it before exchanging indices.
  std::string Digest() const;

  int64_t channels() const { return channels_; }
  int64_t segments() const { return segments_; }
  int64_t dict_size() const { return dict_size_; }
  int64_t levels() const { return static_cast<int64_t>(levels_.size()); }
  const torch::Tensor& level(int64_t l) const { return levels_[l]; }

 private:
  // The Linear heads of one umgm level (absent: latent and side heads of the last level).
  struct UmgmHeads {
    torch::nn::Linear latent_stage{nullptr}, quantization{nullptr}, latent{nullptr};
    torch::nn::Linear dequantization{nullptr}, side{nullptr}, restore{nullptr};
    torch::Tensor temperature;  // [m, 1], learned
    torch::Tensor freq_ema;     // [m, k] codeword usage (training statistics only)
  };
  void BuildUmgm(const CodebookConfig& cfg);
  CodebookOutput ForwardUmgm(const torch::Tensor& x);
  torch::Tensor EncodeUmgm(const torch::Tensor& x);
  // Rows [P, C] from the chosen codewords of every level ([L] of [P, C]), last level first.
  torch::Tensor DecodeUmgmRows(const std::vector<torch::Tensor>& chosen);
  void InitUmgmFromRows(torch::Tensor rows, int iterations);

  torch::Tensor DecodeImpl(const torch::Tensor& indices, bool has_unsent);
  // Codeword rows of level l for indices [m, P] (values in [0, k)): [m, P, d].
  torch::Tensor Gather(int64_t l, const torch::Tensor& idx) const;
  // [N, C, H, W] → [m, N·H·W, d]
  torch::Tensor ToSegments(const torch::Tensor& x) const;
  // [m, N·H·W, d] → [N, C, H, W]
  torch::Tensor FromSegments(const torch::Tensor& s, const torch::IntArrayRef& shape) const;

  int64_t channels_, segments_, dict_size_, seg_dim_;
  torch::nn::ParameterList codewords{nullptr};  // qv2x variant
  std::vector<torch::Tensor> levels_;           // both: C_l [m, k, d]
  std::vector<UmgmHeads> heads_;                // umgm variant, per level
};
TORCH_MODULE(Codebook);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_CODEBOOK_H_
