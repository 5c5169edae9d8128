// The agent half of the model, what an agent service runs on its own sweep: pillars →
// PillarVFE → scatter → ResNet BEV backbone → codebook indices (codebook models) or
// features. Children carry QuantV2X's names (`encoder_m1`, `backbone_m1`, `codebook`), so
// a full checkpoint loads into it with LoadOptions::allow_unexpected.
#ifndef QV2X_CORE_MODEL_AGENT_ENCODER_H_
#define QV2X_CORE_MODEL_AGENT_ENCODER_H_

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/model/bev_backbone.h"
#include "core/model/codebook.h"
#include "core/model/pillar_encoder.h"
#include "core/voxel/pillars.h"

namespace qv2x {

struct AgentEncoding {
  // [C, h, w] float: backbone output, before the codebook. Channels-last in memory: call
  // .contiguous() before reading raw bytes.
  torch::Tensor features;
  torch::Tensor indices;  // [L·m, h, w] int64 with a codebook, else undefined
};

class AgentEncoderImpl : public torch::nn::Module {
 public:
  // `codebook` is shared with an EgoFusion when both halves live in one Detector; when
  // null and the config asks for a codebook, the encoder builds its own.
  explicit AgentEncoderImpl(const StageConfig& cfg, Codebook codebook = nullptr);

  // Differentiable backbone features of every agent in the batch: [A, C, h, w].
  torch::Tensor forward(const PillarBatch& batch);

  // One agent's sweep in inference mode (eval mode expected).
  absl::StatusOr<AgentEncoding> Encode(const Pillars& pillars);

  bool has_codebook() const { return !codebook.is_empty(); }

  PointPillarEncoder encoder_m1{nullptr};
  ResNetBevBackbone backbone_m1{nullptr};
  Codebook codebook{nullptr};
};
TORCH_MODULE(AgentEncoder);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_AGENT_ENCODER_H_
