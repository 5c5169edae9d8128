#include "core/model/model_summary.h"

#include "core/model/checkpoint.h"
#include "core/model/detector.h"
#include "core/model/torch_status.h"

namespace qv2x {

absl::StatusOr<ModelSummary> SummarizeModel(const StageConfig& cfg) {
  absl::StatusOr<Detector> model = MakeDetector(cfg);
  if (!model.ok()) return model.status();
  ModelSummary s;
  s.model = cfg.model.core_method;
  for (const auto& child : (*model)->named_children()) {
    ModuleSummary m;
    m.name = child.key();
    for (const auto& p : child.value()->parameters()) m.parameters += p.numel();
    for (const auto& b : child.value()->buffers()) m.buffers += b.numel();
    s.parameters += m.parameters;
    s.modules.push_back(std::move(m));
  }
  s.fp32_bytes = 4 * s.parameters;
  absl::StatusOr<BevGeometry> g = ComputeBevGeometry(cfg);
  if (!g.ok()) return g.status();
  s.geometry = *g;
  absl::StatusOr<ModelCost> cost = EstimateModelCost(cfg);
  if (!cost.ok()) return cost.status();
  s.cost = *cost;
  return s;
}

absl::StatusOr<InitialCheckpoint> WriteInitialCheckpoint(const StageConfig& cfg, uint64_t seed,
                                                         const std::string& path) {
  absl::Status seeded = TorchCall("seeding", [&]() -> absl::Status {
    torch::manual_seed(seed);
    return absl::OkStatus();
  });
  if (!seeded.ok()) return seeded;
  absl::StatusOr<Detector> model = MakeDetector(cfg);
  if (!model.ok()) return model.status();
  CheckpointMeta meta;
  meta.model = cfg.model.core_method;
  meta.stage = 0;
  meta.epoch = 0;
  meta.config_yaml = cfg.source_yaml;
  if (absl::Status s = SaveCheckpoint(**model, meta, path); !s.ok()) return s;
  InitialCheckpoint out;
  for (const auto& p : (*model)->parameters()) out.parameters += p.numel();
  out.codebook_digest = CodebookDigestOf(**model);
  return out;
}

}  // namespace qv2x
