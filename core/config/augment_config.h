// Training-time data augmentation (`train_params.augment`, optional: absent means none).
// Kept out of model_config.h, which nearly every file includes: only the trainer reads it,
// from the config's YAML text, and LoadStageConfig validates it with the rest.
//
//   train_params:
//     augment:
//       flip_probability: 0.5  # mirror the scene left-right (ego frame y -> -y)
//       rotate_deg: 10         # turn the ego's view by an angle uniform in [-10, 10] degrees
//       agent_dropout: 0.2     # leave each other agent out of the frame with this probability
//       sparse_messages:       # each other agent sends a sparse map (issue 13) with this
//         probability: 0.5     # probability, its selection (core/voxel/cell_selection.h)
//         min_height_span_m: [0, 1]  # drawn uniformly from these ranges, so that fusion
//         dilation_cells: [0, 2]     # learns to work with whatever cells arrive
#ifndef QV2X_CORE_CONFIG_AUGMENT_CONFIG_H_
#define QV2X_CORE_CONFIG_AUGMENT_CONFIG_H_

#include <array>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/config/yaml_reader.h"

namespace qv2x {

struct AugmentConfig {
  double flip_probability = 0;                     // in [0, 1]
  double rotate_deg = 0;                           // in [0, 180]
  double agent_dropout = 0;                        // in [0, 1)
  double sparse_probability = 0;                   // in [0, 1]
  std::array<double, 2> sparse_span_m{0, 1};       // [lo, hi] in [0, 100]
  std::array<int, 2> sparse_dilation_cells{0, 2};  // [lo, hi] in [0, 64]

  bool Any() const {
    return flip_probability > 0 || rotate_deg > 0 || agent_dropout > 0 || sparse_probability > 0;
  }
};

// Reads the optional `augment` map of a `train_params` reader; errors name the key path.
absl::StatusOr<AugmentConfig> ParseAugmentConfig(YamlReader& train_params);

// The augmentation of a loaded stage config (from its YAML text, overrides included).
absl::StatusOr<AugmentConfig> AugmentConfigOf(const StageConfig& cfg);

}  // namespace qv2x

#endif  // QV2X_CORE_CONFIG_AUGMENT_CONFIG_H_
