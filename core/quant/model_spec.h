// The quantizable structure of a model, derived from its StageConfig: every conv / linear
// with the BatchNorm folded into it, grouped into the blocks that PTQ reconstructs, and
// the activation quantization points between them. Names are state_dict prefixes, so the
// same names key the FP32 checkpoint, the INT8 artifact and the reconstruction report.
// Plain C++: shared by the simulated (fake-quant) model and the INT8 runtime.
#ifndef QV2X_CORE_QUANT_MODEL_SPEC_H_
#define QV2X_CORE_QUANT_MODEL_SPEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/config/model_config.h"

namespace qv2x::quant {

enum class LayerKind {
  kLinear,  // weight [out, in]
  kConv,    // weight [out, in / groups, k, k]
  // ConvTranspose2d with kernel = stride, run as a 1x1 conv to out·stride² channels
  // followed by a pixel shuffle (exact: the kernel windows do not overlap).
  kDeconv,
};

struct LayerSpec {
  std::string name;  // state_dict prefix of the layer ("backbone_m1.resnet.layer0.0.conv1")
  std::string bn;    // prefix of the BatchNorm folded into it, or ""
  LayerKind kind = LayerKind::kConv;
  int64_t in = 0, out = 0, kernel = 1, stride = 1, padding = 0, groups = 1;
  bool has_bias = false;  // the layer's own bias
  bool relu = false;      // ReLU fused after it
  double bn_eps = 1e-5;

  // Rows of the weight as executed (per-output-channel quantization runs over these).
  int64_t rows() const { return kind == LayerKind::kDeconv ? out * stride * stride : out; }
};

enum class BlockKind {
  kPfn,         // PillarVFE layer: linear + ReLU, max over a pillar's points
  kResidual,    // BasicBlock / Bottleneck: main path, optional shortcut conv, add + ReLU
  kDeconv,      // pyramid decoder of one level
  kSequential,  // shrink header: conv + ReLU, conv + ReLU
  kHeads,       // cls / reg / dir 1x1 convs on one input; FP32 outputs
};

struct BlockSpec {
  std::string name;
  BlockKind kind = BlockKind::kResidual;
  std::vector<LayerSpec> layers;      // main path in order (heads: cls, reg, dir)
  std::optional<LayerSpec> shortcut;  // residual blocks whose shape changes
  // Activation quantizers. "" = none at that point.
  std::string input_act;                // the block quantizes its (FP32) input
  std::vector<std::string> layer_acts;  // after each main layer (and its ReLU)
  std::string shortcut_act;
  std::string output_act;  // residual: after add + ReLU; PFN: after the max
  int64_t stride() const;  // spatial stride of the block (input cells per output cell)
};

struct ModelSpec {
  std::vector<BlockSpec> agent;               // PFN, then the BEV backbone blocks
  std::vector<std::vector<BlockSpec>> trunk;  // pyramid ResNeXt blocks per level
  std::vector<std::string> occupancy_heads;   // FP32: the fusion weights' source
  std::vector<BlockSpec> deconvs;             // per level, into one shared quantizer
  BlockSpec shrink;
  BlockSpec heads;
  std::string codebook;  // "codebook" or "" (stage-1 models)

  // Every block in reconstruction order.
  std::vector<const BlockSpec*> Blocks() const;
  // Every activation quantizer name, each once.
  std::vector<std::string> ActNames() const;
};

ModelSpec MakeModelSpec(const StageConfig& cfg);
// Unimplemented, saying why, for models the INT8 path does not cover: the umgm codebook
// (its Linear heads have no place in the artifact format yet).
absl::Status CheckInt8Coverage(const StageConfig& cfg);

inline constexpr int kPfnInputs = 10;  // point features (kNumPointFeatures)

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_MODEL_SPEC_H_
