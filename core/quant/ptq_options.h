// Options and progress of post-training quantization (SPEC §7). Plain C++: the quantizer
// service and the CLI include this without LibTorch.
#ifndef QV2X_CORE_QUANT_PTQ_OPTIONS_H_
#define QV2X_CORE_QUANT_PTQ_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace qv2x::quant {

// How a quantizer's clipping range is chosen: the observed min/max, or the shrink of it
// that minimises the Lp (p = 2.4) quantization error.
enum class ScaleMethod { kMinMax, kMse };

struct PtqOptions {
  int n_bits_w = 8, n_bits_a = 8;  // 2..8
  int num_cali_batches = 16;       // calibration frames (one frame, all its agents, per batch)
  int iters_w = 5000;              // AdaRound iterations per block
  ScaleMethod scale_method = ScaleMethod::kMse;  // weights and activations
  bool reconstruct = true;                       // false: nearest rounding
  bool qdrop = false;
  double qdrop_prob = 0.5;
  double round_weight = 0.01;  // AdaRound regulariser weight
  double b_start = 20, b_end = 2, warmup = 0.2;
  int threads = 0;  // intra-op threads; 0 leaves LibTorch's setting
  uint64_t seed = 0;

  // qv2x additions. Each reconstruction step runs `recon_batch` random crops of
  // `recon_crop` x `recon_crop` input cells (BRECQ samples a mini-batch of calibration
  // images per step; crops keep a step cheap on a CPU). Activation statistics use every
  // calibration frame; reconstruction caches the first `recon_samples` of them.
  int recon_batch = 4;
  int recon_crop = 32;
  int recon_samples = 8;
  double recon_lr = 1e-3;  // Adam on the rounding variables
};

// Range checks with the offending field named.
absl::Status ValidatePtqOptions(const PtqOptions& options);

// Options from a YAML file (configs/ptq/default.yaml lists every key); absent keys keep
// the defaults, unknown or malformed keys are errors naming the key.
absl::StatusOr<PtqOptions> LoadPtqOptions(const std::string& yaml_path);

const char* ScaleMethodName(ScaleMethod m);  // "minmax" | "mse"
nlohmann::json PtqOptionsJson(const PtqOptions& options);

struct PtqProgress {
  enum Kind { kCalibration, kReconstruction, kDone } kind;
  int index = 0, total = 0;  // calibration frame or block, 0-based
  std::string block;         // block name (reconstruction)
  double loss_before = 0;    // block output MSE with nearest rounding
  double loss_after = 0;     // ... with the rounding kept (learned, when it does not lose)
};

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_PTQ_OPTIONS_H_
