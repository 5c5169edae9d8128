#include "core/model/agent_encoder.h"

#include "absl/strings/str_cat.h"
#include "core/model/torch_status.h"

namespace qv2x {

AgentEncoderImpl::AgentEncoderImpl(const StageConfig& cfg, Codebook shared_codebook) {
  encoder_m1 = register_module("encoder_m1", PointPillarEncoder(cfg.model.pillar_vfe));
  backbone_m1 = register_module("backbone_m1",
                                ResNetBevBackbone(cfg.model.backbone, encoder_m1->out_channels()));
  if (cfg.model.with_codebook) {
    codebook = register_module(
        "codebook", shared_codebook.is_empty() ? Codebook(cfg.model.codebook) : shared_codebook);
  }
}

torch::Tensor AgentEncoderImpl::forward(const PillarBatch& batch) {
  // Training batches every agent (BatchNorm statistics span the batch). Inference runs the
  // backbone one agent at a time on channels-last maps, which is faster on CPU than one
  // large NCHW batch. The children's flags count: a Detector registers them, not this
  // module.
  if (backbone_m1->is_training()) return backbone_m1(encoder_m1(batch));
  const torch::Tensor pillar_features = encoder_m1->pillar_vfe(batch.features, batch.num_points);
  std::vector<torch::Tensor> maps;
  for (int64_t a = 0; a < batch.num_agents(); ++a) {
    maps.push_back(backbone_m1(ScatterAgentToBev(pillar_features, batch, a)));
  }
  return maps.size() == 1 ? maps.front() : torch::cat(maps);
}

absl::StatusOr<AgentEncoding> AgentEncoderImpl::Encode(const Pillars& pillars) {
  if (pillars.num_pillars < 0 ||
      pillars.features.size() !=
          static_cast<size_t>(pillars.num_pillars) * pillars.max_points * kNumPointFeatures ||
      pillars.num_points.size() != static_cast<size_t>(pillars.num_pillars) ||
      pillars.coords.size() != 2 * static_cast<size_t>(pillars.num_pillars)) {
    return absl::InvalidArgumentError("agent encoder: inconsistent Pillars sizes");
  }
  for (int i = 0; i < pillars.num_pillars; ++i) {
    const int32_t row = pillars.coords[2 * i], col = pillars.coords[2 * i + 1];
    if (row < 0 || row >= pillars.grid_h || col < 0 || col >= pillars.grid_w) {
      return absl::InvalidArgumentError(
          absl::StrCat("agent encoder: pillar ", i, " at (", row, ", ", col, ") lies outside the ",
                       pillars.grid_h, " x ", pillars.grid_w, " grid"));
    }
  }
  return TorchCall("agent encoder", [&]() -> absl::StatusOr<AgentEncoding> {
    c10::InferenceMode guard;
    AgentEncoding out;
    out.features = forward(MakePillarBatch({&pillars}));
    if (has_codebook()) out.indices = codebook->Encode(out.features)[0];
    out.features = out.features[0];
    return out;
  });
}

}  // namespace qv2x
