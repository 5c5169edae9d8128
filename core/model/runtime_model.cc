#include "core/model/runtime_model.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/model/checkpoint.h"
#include "core/model/torch_status.h"

namespace qv2x {

absl::StatusOr<RuntimeModel> LoadRuntimeModel(const std::string& config_path,
                                              const std::string& checkpoint,
                                              const std::vector<std::string>& overrides) {
  RuntimeModel m;
  QV2X_ASSIGN_OR_RETURN(m.cfg, LoadStageConfig(config_path, overrides));
  if (!m.cfg.model.with_codebook) {
    return absl::InvalidArgumentError(absl::StrCat(
        config_path, ": the services exchange codebook indices; model.core_method must be ",
        kModelWithCodebook));
  }
  if (!checkpoint.empty() && !std::filesystem::exists(checkpoint)) {
    return absl::NotFoundError(absl::StrCat("checkpoint ", checkpoint, " does not exist"));
  }
  return TorchCall("load model", [&]() -> absl::StatusOr<RuntimeModel> {
    torch::manual_seed(kInitialModelSeed);
    QV2X_ASSIGN_OR_RETURN(m.detector, MakeDetector(m.cfg));
    if (!checkpoint.empty()) {
      QV2X_ASSIGN_OR_RETURN(Checkpoint ckpt, ReadCheckpoint(checkpoint));
      if (absl::Status st = LoadStateDict(*m.detector, ckpt); !st.ok()) {
        return CheckpointRefused(st, checkpoint, ckpt.meta, m.cfg.name);
      }
    }
    m.detector->eval();
    m.detector->FreezeForInference();
    m.checkpoint = checkpoint;
    m.codebook_digest = m.detector->codebook()->Digest();
    return m;
  });
}

}  // namespace qv2x
