#include "core/training/stage_loss.h"

#include "core/common/status_macros.h"
#include "core/model/pillar_encoder.h"

namespace qv2x {

torch::Tensor FrozenAgentFeatures(Detector& model, const std::vector<Sample>& samples) {
  std::vector<const Pillars*> pillars;
  for (const Sample& s : samples) {
    for (const AgentInput& a : s.collated.agents) pillars.push_back(&a.pillars);
  }
  torch::NoGradGuard frozen;
  return model->agent_encoder()->forward(MakePillarBatch(pillars));
}

absl::StatusOr<LossTerms> ComputeStageLoss(Detector& model, const StageConfig& cfg,
                                           const std::vector<Sample>& batch, int stage) {
  std::vector<const CollatedFrame*> frames;
  for (const Sample& s : batch) frames.push_back(&s.collated);
  if (stage == 2) {
    CodebookOutput cb = model->codebook()->forward(FrozenAgentFeatures(model, batch));
    LossTerms terms;
    terms.total = torch::zeros({}, cb.loss.options());
    terms.AddCodebook(cb.loss, 1.0);
    return terms;
  }
  QV2X_ASSIGN_OR_RETURN(DetectorOutput out, RunDetector(model, frames));
  std::vector<FrameTargets> targets;
  for (const Sample& s : batch) targets.push_back(s.targets);
  QV2X_ASSIGN_OR_RETURN(BatchTargets stacked, StackTargets(targets));
  DetectionLoss loss_fn(cfg.loss, cfg.model.dir_args);
  HeadOutputs heads{out.cls, out.reg, out.dir};
  OccupancyInputs occ;
  if (stage == 1) {
    occ.logits = out.occupancy;
    for (size_t level = 0; level < out.occupancy.size(); ++level) {
      std::vector<torch::Tensor> per_agent;
      for (const Sample& s : batch) {
        for (const auto& agent_levels : s.occupancy) per_agent.push_back(agent_levels[level]);
      }
      occ.labels.push_back(torch::stack(per_agent));
    }
  }
  QV2X_ASSIGN_OR_RETURN(LossTerms terms, loss_fn(heads, stacked, stage == 1 ? &occ : nullptr));
  if (stage == 3 && out.codebook_loss.defined()) {
    terms.AddCodebook(out.codebook_loss, cfg.loss.codebook_weight);
  }
  return terms;
}

}  // namespace qv2x
