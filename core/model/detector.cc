#include "core/model/detector.h"

#include "absl/strings/str_cat.h"
#include "core/model/model_validation.h"
#include "core/model/torch_status.h"

namespace qv2x {

DetectorImpl::DetectorImpl(const StageConfig& cfg) {
  if (cfg.model.with_codebook) codebook_ = Codebook(cfg.model.codebook);
  agent_encoder_ = AgentEncoder(cfg, codebook_);
  ego_fusion_ = EgoFusion(cfg, codebook_);
  // Register the halves' children directly so that names carry no extra prefix; the
  // order follows QuantV2X's state_dict.
  register_module("encoder_m1", agent_encoder_->encoder_m1);
  register_module("backbone_m1", agent_encoder_->backbone_m1);
  if (has_codebook()) register_module("codebook", codebook_);
  register_module("pyramid_backbone", ego_fusion_->pyramid_backbone);
  register_module("shrink_conv", ego_fusion_->shrink_conv);
  register_module("cls_head", ego_fusion_->cls_head);
  register_module("reg_head", ego_fusion_->reg_head);
  register_module("dir_head", ego_fusion_->dir_head);
}

DetectorOutput DetectorImpl::forward(const std::vector<const CollatedFrame*>& frames,
                                     bool ego_only) {
  std::vector<const Pillars*> pillars;
  std::vector<const AgentInput*> agents;
  std::vector<AffineWarp> warps;
  DetectorOutput out;
  bool sparse = false;
  for (const CollatedFrame* f : frames) {
    const size_t n = ego_only ? 1 : f->agents.size();
    for (size_t i = 0; i < n; ++i) {
      pillars.push_back(&f->agents[i].pillars);
      agents.push_back(&f->agents[i]);
      warps.push_back(f->warp_to_ego[i]);
      sparse |= f->agents[i].sparse.has_value();
    }
    out.record_len.push_back(static_cast<int64_t>(n));
  }
  torch::Tensor features = agent_encoder_->forward(MakePillarBatch(pillars));
  if (has_codebook()) {
    CodebookOutput q = codebook_->forward(features);
    features = q.reconstruction;
    out.codebook_loss = q.loss;
  }
  if (sparse) {
    // What a sparse message leaves out reaches the ego as zeros, as the runtime decodes it.
    const int64_t h = features.size(2), w = features.size(3);
    torch::Tensor keep = torch::ones({features.size(0), 1, h, w});
    for (size_t i = 0; i < agents.size(); ++i) {
      if (!agents[i]->sparse) continue;
      absl::StatusOr<std::vector<uint8_t>> mask =
          SelectCells(agents[i]->pillars, h, w, *agents[i]->sparse);
      TORCH_CHECK(mask.ok(), std::string(mask.status().message()));
      keep[static_cast<int64_t>(i)][0].copy_(
          torch::from_blob(mask->data(), {h, w}, torch::kUInt8).to(torch::kFloat32));
    }
    features = features * keep.to(features.device(), features.scalar_type());
  }
  HeadOutput heads = ego_fusion_->forward(features, out.record_len, WarpTensor(warps));
  out.cls = std::move(heads.cls);
  out.reg = std::move(heads.reg);
  out.dir = std::move(heads.dir);
  out.occupancy = std::move(heads.occupancy);
  return out;
}

void DetectorImpl::FreezeForInference() {
  torch::NoGradGuard no_grad;
  agent_encoder_->backbone_m1->resnet->Freeze();
  ego_fusion_->pyramid_backbone->Freeze();
  ego_fusion_->shrink_conv->Freeze();
}

absl::StatusOr<Detector> MakeDetector(const StageConfig& cfg) {
  if (absl::Status s = ValidateModelConfig(cfg); !s.ok()) return s;
  return TorchCall("building the detector",
                   [&]() -> absl::StatusOr<Detector> { return Detector(cfg); });
}

absl::StatusOr<AgentEncoder> MakeAgentEncoder(const StageConfig& cfg) {
  if (absl::Status s = ValidateModelConfig(cfg); !s.ok()) return s;
  return TorchCall("building the agent encoder",
                   [&]() -> absl::StatusOr<AgentEncoder> { return AgentEncoder(cfg); });
}

absl::StatusOr<EgoFusion> MakeEgoFusion(const StageConfig& cfg) {
  if (absl::Status s = ValidateModelConfig(cfg); !s.ok()) return s;
  return TorchCall("building the fusion model",
                   [&]() -> absl::StatusOr<EgoFusion> { return EgoFusion(cfg); });
}

absl::StatusOr<DetectorOutput> RunDetector(Detector& model,
                                           const std::vector<const CollatedFrame*>& frames,
                                           bool ego_only) {
  if (frames.empty()) return absl::InvalidArgumentError("detector: empty batch");
  int grid_h = -1, grid_w = -1, max_points = -1;
  for (size_t b = 0; b < frames.size(); ++b) {
    const CollatedFrame* f = frames[b];
    if (f == nullptr || f->agents.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("detector: frame ", b, " has no agents"));
    }
    if (f->warp_to_ego.size() != f->agents.size()) {
      return absl::InvalidArgumentError(absl::StrCat("detector: frame ", b, " has ",
                                                     f->agents.size(), " agents but ",
                                                     f->warp_to_ego.size(), " warps"));
    }
    for (const AgentInput& a : f->agents) {
      const Pillars& p = a.pillars;
      if (grid_h < 0) {
        grid_h = p.grid_h, grid_w = p.grid_w, max_points = p.max_points;
      } else if (p.grid_h != grid_h || p.grid_w != grid_w || p.max_points != max_points) {
        return absl::InvalidArgumentError(
            absl::StrCat("detector: agent ", a.agent_id, " of frame ", b,
                         " has a different pillar grid or max_points"));
      }
      if (p.features.size() !=
              static_cast<size_t>(p.num_pillars) * p.max_points * kNumPointFeatures ||
          p.num_points.size() != static_cast<size_t>(p.num_pillars) ||
          p.coords.size() != 2 * static_cast<size_t>(p.num_pillars)) {
        return absl::InvalidArgumentError(absl::StrCat("detector: agent ", a.agent_id, " of frame ",
                                                       b, " has inconsistent Pillars sizes"));
      }
    }
  }
  return TorchCall("detector", [&]() -> absl::StatusOr<DetectorOutput> {
    return model->forward(frames, ego_only);
  });
}

}  // namespace qv2x
