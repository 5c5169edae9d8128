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
  if (r.Has("sparse_messages")) {
    QV2X_ASSIGN_OR_RETURN(YamlReader sp, r.Map("sparse_messages"));
    QV2X_ASSIGN_OR_RETURN(a.sparse_probability, sp.DoubleInRange("probability", 0, 1));
    QV2X_ASSIGN_OR_RETURN(std::vector<double> span, sp.Doubles("min_height_span_m", 2));
    QV2X_ASSIGN_OR_RETURN(std::vector<int64_t> dil, sp.Ints("dilation_cells", 2));
    if (!(0 <= span[0] && span[0] <= span[1] && span[1] <= 100)) {
      return sp.Error("min_height_span_m", "expected [lo, hi] with 0 <= lo <= hi <= 100");
    }
    if (!(0 <= dil[0] && dil[0] <= dil[1] && dil[1] <= 64)) {
      return sp.Error("dilation_cells", "expected [lo, hi] with 0 <= lo <= hi <= 64");
    }
    a.sparse_span_m = {span[0], span[1]};
    a.sparse_dilation_cells = {static_cast<int>(dil[0]), static_cast<int>(dil[1])};
  }
  return a;
}

absl::StatusOr<AugmentConfig> AugmentConfigOf(const StageConfig& cfg) {
  QV2X_ASSIGN_OR_RETURN(YamlReader root, YamlReader::FromString(cfg.source_yaml));
  QV2X_ASSIGN_OR_RETURN(YamlReader tp, root.Map("train_params"));
  return ParseAugmentConfig(tp);
}

}  // namespace qv2x
