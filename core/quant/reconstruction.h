// Block reconstruction (BRECQ) with learned rounding (AdaRound) and optional QDrop: the
// rounding of every weight in a block is learned so that the quantized block's output
// matches the FP32 block's output on calibration inputs.
#ifndef QV2X_CORE_QUANT_RECONSTRUCTION_H_
#define QV2X_CORE_QUANT_RECONSTRUCTION_H_

#include <ATen/core/Tensor.h>

#include <atomic>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/quant/ptq.h"
#include "core/quant/ptq_options.h"
#include "core/quant/sim_net.h"

namespace qv2x::quant {

// Calibration inputs of one block: per sample, the FP32 model's input and the quantized
// model's input (the same tensors for the first block). Maps are [1, C, H, W]; PFN inputs
// are [P, N, 10] point features.
struct ReconData {
  std::vector<at::Tensor> fp_in, q_in;
};

// Output error: Σ over channels of the squared difference, mean over positions and samples
// (BRECQ's reconstruction loss), on the first few samples in full.
double BlockOutputError(const SimBlock& block, const ReconData& data);

// Learns the rounding of every layer of `block` (opt.iters_w Adam steps on random crops),
// then fixes it (SimLayer::levels). Keeps nearest rounding when learning did not help.
absl::StatusOr<PtqBlockResult> ReconstructBlock(SimBlock& block, const ReconData& data,
                                                const PtqOptions& opt, std::mt19937_64& rng,
                                                const std::atomic<bool>* cancel);

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_RECONSTRUCTION_H_
