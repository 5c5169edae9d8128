// Analytic compute cost of the model at a preset, counted from the conv shapes
// (multiply-accumulates; FLOPs = 2 × MACs). Used by `qv2x model summary` and the
// benchmarks to turn timings into GFLOP/s. No LibTorch here.
#ifndef QV2X_CORE_MODEL_MODEL_COST_H_
#define QV2X_CORE_MODEL_MODEL_COST_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"

namespace qv2x {

struct ModelCost {
  int64_t vfe_per_pillar = 0;      // PFN layers over one pillar's max_points slots
  int64_t backbone_per_agent = 0;  // per-agent ResNet BEV backbone
  int64_t codebook_per_agent = 0;  // distance matmuls (0 without a codebook)
  int64_t pyramid_per_agent = 0;   // ResNeXt trunk + occupancy heads, run on every agent
  int64_t decoders_per_frame = 0;  // deconvs of the fused levels
  int64_t shrink_per_frame = 0;
  int64_t heads_per_frame = 0;

  // The agent side for one sweep of `pillars` pillars.
  int64_t EncodeMacs(int64_t pillars) const {
    return vfe_per_pillar * pillars + backbone_per_agent + codebook_per_agent;
  }
  // The fusion side for a frame of `agents` agents.
  int64_t FuseMacs(int64_t agents) const {
    return pyramid_per_agent * agents + decoders_per_frame + shrink_per_frame + heads_per_frame;
  }
};

absl::StatusOr<ModelCost> EstimateModelCost(const StageConfig& cfg);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_MODEL_COST_H_
