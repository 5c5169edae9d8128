// Checkpoint bytes (a pickled state_dict, docs/checkpoint-format.md) -> Checkpoint, then
// loaded into the tiny stage-3 detector as every service loads one. Seeds: checkpoints the
// project writes (SerializeCheckpoint of the tiny detector and of a single codebook).
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/config/model_config.h"
#include "core/model/checkpoint.h"
#include "core/model/detector.h"
#include "fuzz/fuzz_check.h"

namespace {

qv2x::Detector& TinyDetector() {
  static qv2x::Detector* model = [] {
    absl::StatusOr<qv2x::StageConfig> cfg =
        qv2x::LoadStageConfig(std::string(QV2X_SOURCE_DIR) + "/configs/tiny/stage3.yaml");
    QV2X_FUZZ_CHECK(cfg.ok(), "configs/tiny/stage3.yaml");
    absl::StatusOr<qv2x::Detector> d = qv2x::MakeDetector(*cfg);
    QV2X_FUZZ_CHECK(d.ok(), "tiny detector");
    return new qv2x::Detector(*d);
  }();
  return *model;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);
  TinyDetector();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<qv2x::Checkpoint> ckpt =
      qv2x::ParseCheckpoint(std::string(reinterpret_cast<const char*>(data), size));
  if (!ckpt.ok()) return 0;
  (void)qv2x::LoadStateDict(*TinyDetector(), *ckpt, {});
  return 0;
}
