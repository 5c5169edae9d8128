// QuantV2X's own checkpoints in and out: a state_dict as QuantV2X's code writes it
// (torch.save(model.state_dict()), DataParallel's `module.` prefixes or not) becomes a
// qv2x checkpoint of a stage config whose model has QuantV2X's layout (configs/quantv2x/:
// the umgm codebook, the class-vector cls head), every tensor accounted for; and back.
// LibTorch-free header.
#ifndef QV2X_CORE_MODEL_QUANTV2X_INTEROP_H_
#define QV2X_CORE_MODEL_QUANTV2X_INTEROP_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"

namespace qv2x {

struct InteropReport {
  int64_t tensors = 0;           // tensors read and written
  int64_t prefixes_removed = 0;  // `module.` prefixes stripped (import)
  std::string codebook_digest;   // empty without a codebook
};

// Reads `in`, strips `module.` prefixes, checks it against the model of `cfg` (nothing
// missing, nothing left over, every shape equal, the umgm codebook's three names of each
// level equal; one error lists them all) and writes `out` as a qv2x checkpoint (metadata:
// the config, its stage, epoch 0, the codebook digest).
absl::StatusOr<InteropReport> ImportQuantV2xCheckpoint(const StageConfig& cfg,
                                                       const std::string& in,
                                                       const std::string& out);

// Reads the qv2x checkpoint `in`, checks it against the model of `cfg` and writes the plain
// state_dict QuantV2X's code loads (its names, no qv2x metadata entries).
absl::StatusOr<InteropReport> ExportQuantV2xCheckpoint(const StageConfig& cfg,
                                                       const std::string& in,
                                                       const std::string& out);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_QUANTV2X_INTEROP_H_
