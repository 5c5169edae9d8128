// The PTQ pipeline on in-memory inputs (ptq.h wraps it with files), for tests and tools
// that already hold a model and frames.
#ifndef QV2X_CORE_QUANT_PTQ_PIPELINE_H_
#define QV2X_CORE_QUANT_PTQ_PIPELINE_H_

#include <atomic>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model/checkpoint.h"
#include "core/quant/int8_artifact.h"
#include "core/quant/ptq.h"
#include "core/quant/sim_net.h"
#include "core/voxel/pillars.h"

namespace qv2x::quant {

struct PtqRun {
  std::unique_ptr<SimNet> net;
  std::vector<PtqBlockResult> reconstruction;
};

// Folds `fp32_state`, calibrates on `frames` (every agent of each), fits the quantizers
// and, with options.reconstruct, reconstructs every block in order.
absl::StatusOr<PtqRun> RunPtq(const StageConfig& cfg, const NamedTensors& fp32_state,
                              const std::vector<const CollatedFrame*>& frames,
                              const PtqOptions& options, const PtqProgressFn& progress,
                              const std::atomic<bool>* cancel);

// The artifact of a calibrated SimNet. `config_yaml` must parse back into its config.
Int8Artifact ExportInt8Artifact(const SimNet& net, const std::string& config_yaml,
                                const PtqOptions& options,
                                const std::vector<PtqBlockResult>& reconstruction);

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_PTQ_PIPELINE_H_
