// The agent-side front of the model: PillarVFE (PFN layers over each pillar's points) and
// the scatter of pillar features into a dense BEV map (SPEC §3). Registered as QuantV2X's
// `encoder_m1` (its children: `pillar_vfe.pfn_layers.<i>.{linear,norm}`).
#ifndef QV2X_CORE_MODEL_PILLAR_ENCODER_H_
#define QV2X_CORE_MODEL_PILLAR_ENCODER_H_

#include <torch/torch.h>

#include <vector>

#include "core/config/model_config.h"
#include "core/voxel/pillars.h"

namespace qv2x {

// Pillars of one or more agents as tensors, agents concatenated along the pillar axis.
struct PillarBatch {
  torch::Tensor features;    // [P, max_points, 10] float
  torch::Tensor num_points;  // [P] int32
  torch::Tensor cell;        // [P] int64: row * grid_w + col
  std::vector<int64_t> pillars_per_agent;
  int64_t grid_h = 0, grid_w = 0;
  int64_t num_agents() const { return static_cast<int64_t>(pillars_per_agent.size()); }
};

// Views or copies qv2x::Pillars into tensors. A single agent's pillars are wrapped without
// copying (the Pillars must outlive the batch); several agents are concatenated. All
// agents must share the grid and max_points.
PillarBatch MakePillarBatch(const std::vector<const Pillars*>& agents);

// Linear (no bias) → BatchNorm1d → ReLU → max over the pillar's points. A non-final
// layer (OpenCOOD's PFNLayer) halves its width and concatenates the max back onto every
// point.
class PfnLayerImpl : public torch::nn::Module {
 public:
  PfnLayerImpl(int64_t in, int64_t out, bool last_layer, double eps, double momentum);
  torch::Tensor forward(const torch::Tensor& x);  // [P, N, in] → [P, out] or [P, N, out]

  // Inference form of a last layer: BN folded into a per-channel affine map applied after
  // the max. ReLU and an affine map with scale s are monotonic per channel, so
  // max_i ReLU(s·z_i + b) = ReLU(max(s·max_i z_i + b, s·min_i z_i + b)); the [P·N, C]
  // point features are never materialised, only chunks of them. Padded slots count as
  // zero points (num_points [P]). Without gradients, a CPU kernel visits only the valid
  // points of each pillar.
  torch::Tensor ForwardFolded(const torch::Tensor& x, const torch::Tensor& num_points);
  bool last_layer() const { return last_; }

 private:
  bool last_;
  torch::nn::Linear linear{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
};
TORCH_MODULE(PfnLayer);

class PillarVfeImpl : public torch::nn::Module {
 public:
  PillarVfeImpl(const PillarVfeConfig& cfg, int64_t in_features);
  // features [P, N, 10], num_points [P] → [P, C]. Points past num_points are zeroed
  // before the first layer; as in OpenCOOD they still enter the max after BN. In eval
  // mode a single-layer VFE runs PfnLayerImpl::ForwardFolded.
  torch::Tensor forward(const torch::Tensor& features, const torch::Tensor& num_points);
  int64_t out_channels() const { return out_channels_; }

 private:
  torch::nn::ModuleList pfn_layers{nullptr};
  int64_t out_channels_ = 0;
};
TORCH_MODULE(PillarVfe);

// Dense [A, C, H, W] canvas from pillar features [P, C] (row = y index, col = x index).
torch::Tensor ScatterToBev(const torch::Tensor& pillar_features, const PillarBatch& batch);
// The same for one agent of the batch: [1, C, H, W] in channels-last memory layout.
torch::Tensor ScatterAgentToBev(const torch::Tensor& pillar_features, const PillarBatch& batch,
                                int64_t agent);

// `encoder_m1`: PillarVFE + scatter.
class PointPillarEncoderImpl : public torch::nn::Module {
 public:
  PointPillarEncoderImpl(const PillarVfeConfig& cfg);
  torch::Tensor forward(const PillarBatch& batch);  // → [A, C, H, W]
  int64_t out_channels() const { return pillar_vfe->out_channels(); }

  PillarVfe pillar_vfe{nullptr};
};
TORCH_MODULE(PointPillarEncoder);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_PILLAR_ENCODER_H_
