// The INT8 model built from an artifact: the agent half (pillars → codebook indices) and
// the ego half (indices → heads) run their convs and linears in the quantized engine on
// quint8 activations, requantizing between layers; the codebook, the occupancy heads,
// warping and the softmax fusion run in FP32 on dequantized maps (SPEC §7).
#ifndef QV2X_CORE_QUANT_INT8_RUNTIME_H_
#define QV2X_CORE_QUANT_INT8_RUNTIME_H_

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/model/codebook.h"
#include "core/model/ego_fusion.h"
#include "core/quant/int8_artifact.h"
#include "core/quant/int8_ops.h"
#include "core/quant/model_spec.h"
#include "core/voxel/pillars.h"

namespace qv2x::quant {

class Int8Net {
 public:
  static absl::StatusOr<std::shared_ptr<Int8Net>> Create(const Int8Artifact& artifact);

  const StageConfig& config() const { return cfg_; }
  const std::string& codebook_digest() const { return digest_; }
  int64_t weight_bytes() const { return weight_bytes_; }
  const std::string& engine() const { return engine_; }
  bool has_codebook() const { return !codebook_.is_empty(); }

  // Backbone output of one agent, dequantized: [1, C, h, w] (checked input).
  absl::StatusOr<at::Tensor> AgentFeatures(const Pillars& pillars);
  // Codebook indices [1, L·m, h, w] of features.
  at::Tensor Encode(const at::Tensor& features) { return codebook_->Encode(features); }
  absl::StatusOr<HeadOutput> Fuse(const std::vector<AgentMessage>& agents);

 private:
  struct Block {
    BlockKind kind;
    std::vector<PackedLayer> layers;
    std::optional<PackedLayer> shortcut;
    const ActQuant* input = nullptr;
    std::vector<const ActQuant*> layer_acts;
    const ActQuant* shortcut_act = nullptr;
    const ActQuant* output = nullptr;
  };

  Int8Net() = default;
  absl::Status Init(const Int8Artifact& a);
  absl::StatusOr<Block> MakeBlock(const BlockSpec& spec, const Int8Artifact& a);
  // Residual / deconv / sequential blocks on quint8 maps.
  at::Tensor RunBlock(const Block& b, const at::Tensor& qx) const;
  at::Tensor PfnCanvas(const Pillars& p) const;  // quint8 [1, C, H, W], channels-last
  HeadOutput FuseMaps(const std::vector<at::Tensor>& maps, const at::Tensor& warps) const;

  StageConfig cfg_;
  ModelSpec spec_;
  std::string digest_, engine_;
  int64_t weight_bytes_ = 0;
  std::map<std::string, ActQuant> acts_;
  // PFN
  PackedLayer pfn_;
  std::vector<float> pfn_in_mul_;          // per feature: 1 / (d · input scale)
  std::vector<uint8_t> pfn_padded_level_;  // per channel: level of ReLU(bias), the padded slots
  const ActQuant* pfn_in_ = nullptr;
  const ActQuant* pfn_out_ = nullptr;
  std::vector<Block> backbone_;
  std::vector<std::vector<Block>> trunk_;
  std::vector<Block> deconvs_;
  Block shrink_;
  PackedLayer heads_;  // cls, reg, dir rows in one linear
  std::vector<int64_t> head_rows_;
  std::vector<at::Tensor> occupancy_weight_, occupancy_bias_;
  Codebook codebook_{nullptr};
};

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_INT8_RUNTIME_H_
