// The simulated (fake-quant) model PTQ calibrates and reconstructs: the FP32 model with
// every BatchNorm folded (model_spec.h), weight quantizers per layer, activation
// quantizers at exactly the points where the INT8 runtime holds quantized tensors, so
// that what reconstruction optimises is what the INT8 model computes. With quantization
// off it is the FP32 model (up to float rounding).
#ifndef QV2X_CORE_QUANT_SIM_NET_H_
#define QV2X_CORE_QUANT_SIM_NET_H_

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/model/checkpoint.h"
#include "core/model/codebook.h"
#include "core/model/pillar_encoder.h"
#include "core/quant/model_spec.h"
#include "core/quant/quantizer.h"

namespace qv2x::quant {

struct SimCtx {
  bool quant_w = false;  // quantized weights: learned rounding if final, else nearest
  bool quant_a = false;  // activation fake quantization
  bool soft = false;     // AdaRound's soft weights where a layer has rounding variables
  double drop = 0;       // QDrop: keep each activation unquantized with this probability
  bool observe = false;  // feed the activation observers (calibration)
  static SimCtx Fp() { return {}; }
  static SimCtx Quant() { return {true, true, false, 0, false}; }
};

struct SimAct {
  ActQuant q;
  ActObserver obs;
};

struct SimLayer {
  LayerSpec spec;
  at::Tensor weight, bias;  // folded FP32, executed layout (deconv: [out·s², in, 1, 1])
  WeightQuant wq;
  at::Tensor v;       // AdaRound variables while reconstructing
  at::Tensor levels;  // final integer levels (float tensor); undefined: nearest rounding

  at::Tensor Levels() const;  // final or nearest
  at::Tensor Weight(const SimCtx& ctx) const;
  // Layer + ReLU (+ pixel shuffle for a deconv).
  at::Tensor Forward(const at::Tensor& x, const SimCtx& ctx) const;
};

class SimBlock {
 public:
  const BlockSpec* spec = nullptr;
  std::vector<SimLayer*> layers;
  SimLayer* shortcut = nullptr;
  SimAct* input_act = nullptr;
  std::vector<SimAct*> layer_acts;
  SimAct* shortcut_act = nullptr;
  SimAct* output_act = nullptr;
  at::Tensor pfn_inv_scale;  // PFN: [10] per-feature input multiplier

  // PFN: x [P, N, 10] point features (padded slots zero) → [P, C]. Heads: the three
  // outputs concatenated along channels. Others: maps [B, C, H, W].
  at::Tensor Forward(const at::Tensor& x, const SimCtx& ctx) const;
  std::vector<SimLayer*> AllLayers() const;
};

at::Tensor ApplyAct(SimAct* act, const at::Tensor& x, const SimCtx& ctx);

struct SimHeads {
  at::Tensor cls, reg, dir;
};

class SimNet {
 public:
  // Folds the FP32 state (a Detector's StateDict or a checkpoint) into the simulated model.
  static absl::StatusOr<std::unique_ptr<SimNet>> Build(const StageConfig& cfg,
                                                       const NamedTensors& state);

  const StageConfig& config() const { return cfg_; }
  const ModelSpec& spec() const { return spec_; }

  // One agent's pillars (a single-agent batch) → backbone output [1, C, h, w].
  at::Tensor AgentForward(const PillarBatch& batch, const SimCtx& ctx);
  // Codebook indices [1, L·m, h, w] and the decoded map; without a codebook, the features.
  std::pair<at::Tensor, at::Tensor> EncodeDecode(const at::Tensor& features);
  // The ego half for one frame: per-agent maps [1, C, h, w] (ego first), warps [N, 2, 3].
  SimHeads EgoForward(const std::vector<at::Tensor>& maps, const at::Tensor& warps,
                      const SimCtx& ctx);

  // Ego pieces, for reconstruction.
  at::Tensor TrunkLevelScore(int64_t level, const at::Tensor& feature) const;  // FP32
  at::Tensor Fuse(int64_t level, const std::vector<at::Tensor>& feats, const at::Tensor& warps);

  // Input equalisation of the PFN linear: x / d feeds the input quantizer, the weights
  // take d (exact in FP32). d = each point feature's largest magnitude.
  void SetPfnInputScale(const at::Tensor& d);
  at::Tensor pfn_input_scale() const { return pfn_scale_; }

  // Weight quantizers of every layer, activation quantizers from their observers.
  void FitQuantizers(int bits_w, int bits_a, ScaleMethod method);

  std::map<std::string, SimLayer> layers;
  std::map<std::string, SimAct> acts;
  std::vector<SimBlock> agent;
  std::vector<std::vector<SimBlock>> trunk;
  std::vector<SimBlock> deconvs;
  SimBlock shrink, heads;
  std::vector<at::Tensor> occupancy_weight, occupancy_bias;  // FP32
  Codebook codebook{nullptr};                                // FP32

 private:
  SimNet() = default;
  absl::Status Init(const StageConfig& cfg, const NamedTensors& state);
  absl::StatusOr<SimBlock> MakeBlock(const BlockSpec& spec,
                                     const std::map<std::string, at::Tensor>& state);

  StageConfig cfg_;
  ModelSpec spec_;
  at::Tensor pfn_scale_;
};

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_SIM_NET_H_
