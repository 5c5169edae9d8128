// The flags that make the agent and fusion services play a dataset back instead of
// simulating the scene: --dataset, --dataset_mode and --missing_agent (docs/datasets.md).
// Both services of a scene must be given the same ones.
#ifndef QV2X_SERVICES_PLAYBACK_FLAGS_H_
#define QV2X_SERVICES_PLAYBACK_FLAGS_H_

#include "absl/status/statusor.h"
#include "core/sim/scene_playback.h"

namespace qv2x::services {

absl::StatusOr<sim::ScenePlayback> ScenePlaybackFromFlags(const sim::SceneConfig& scene);

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_PLAYBACK_FLAGS_H_
