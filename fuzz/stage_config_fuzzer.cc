// Stage config YAML (configs/<preset>/stage*.yaml) -> StageConfig. Seeds: every stage
// config the project ships. A config that parses must also pass the cross-field rules,
// since every loader relies on them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/config/model_config.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<qv2x::StageConfig> cfg = qv2x::ParseStageConfigString(text);
  if (cfg.ok()) {
    QV2X_FUZZ_CHECK(qv2x::ValidateStageConfig(*cfg).ok(), "a parsed config fails validation");
  }
  return 0;
}
