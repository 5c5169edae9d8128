// Post-training quantization of a trained checkpoint into an INT8 artifact (SPEC §7): BN
// folding, activation calibration on frames of a FrameSource, weight quantizers, block
// reconstruction (AdaRound / BRECQ, optionally QDrop), export. What the quantizer service
// runs. No LibTorch headers.
#ifndef QV2X_CORE_QUANT_PTQ_H_
#define QV2X_CORE_QUANT_PTQ_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/quant/ptq_options.h"

namespace qv2x::quant {

struct PtqBlockResult {
  std::string block;
  double loss_before = 0, loss_after = 0;
  bool learned = false;  // false: nearest rounding kept (learning did not lower the error)
  double seconds = 0;
};

struct PtqResult {
  std::string artifact_path;
  int64_t artifact_file_bytes = 0;  // the file on disk
  int64_t int8_bytes = 0;           // the artifact's tensors (Int8AgentEncoder::weight_bytes)
  int64_t fp32_bytes = 0;           // the FP32 model's state_dict tensors
  std::string codebook_digest;      // unchanged from the FP32 model
  std::string engine;               // quantized engine the artifact was checked with
  std::vector<PtqBlockResult> reconstruction;
  PtqOptions options;
  double seconds = 0;
};

using PtqProgressFn = std::function<void(const PtqProgress&)>;

// `calibration_source`: a FrameSource spec ("sim:<scene.yaml>" or a dataset folder); its
// first num_cali_batches frames (every agent of each) calibrate. `cancel` (may be null) is
// polled; a cancelled run returns CANCELLED and writes nothing.
absl::StatusOr<PtqResult> QuantizeCheckpoint(const std::string& config_yaml_path,
                                             const std::string& checkpoint_path,
                                             const std::string& calibration_source,
                                             const PtqOptions& options, const std::string& out_path,
                                             const PtqProgressFn& progress,
                                             const std::atomic<bool>* cancel);

nlohmann::json PtqBlockResultJson(const PtqBlockResult& r);

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_PTQ_H_
