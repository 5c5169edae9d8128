#include "core/config/augment_config.h"

#include "core/common/status_macros.h"

namespace qv2x {

absl::StatusOr<AugmentConfig> ParseAugmentConfig(YamlReader& train_params) {
  AugmentConfig a;
  if (!train_params.Has("augment")) return a;
  QV2X_ASSIGN_OR_RETURN(YamlReader r, train_params.Map("augment"));
  QV2X_ASSIGN_OR_RETURN(a.flip_probability, r.DoubleInRange("flip_probability", 0, 1));
  QV2X_ASSIGN_OR_RETURN(a.rotate_deg, r.DoubleInRange("rotate_deg", 0, 180));
  QV2X_ASSIGN_OR_RETURN(a.agent_dropout, r.DoubleInRange("agent_dropout", 0, 0.99));
  return a;
}

absl::StatusOr<AugmentConfig> AugmentConfigOf(const StageConfig& cfg) {
  QV2X_ASSIGN_OR_RETURN(YamlReader root, YamlReader::FromString(cfg.source_yaml));
  QV2X_ASSIGN_OR_RETURN(YamlReader tp, root.Map("train_params"));
  return ParseAugmentConfig(tp);
}

}  // namespace qv2x
