// Who the agents of a replay are, which recorded frames it plays, and the scene its fusion
// service runs. A replay of N agents sends the recorded agents' own messages (the ego
// first); beyond the recorded ones come clones: recorded agents in turn under new ids, each
// a frame further behind its source, so that every clone's pose and features are those of a
// real sweep taken on its source's path. The fusion service needs a scene that lists
// exactly these agents: the recorded scene with its agent list replaced, clones as
// connected vehicles in free lane slots past the intersection (the simulator must be able
// to place them).
#ifndef QV2X_TOOLS_QV2X_CLIENT_REPLAY_SCENE_H_
#define QV2X_TOOLS_QV2X_CLIENT_REPLAY_SCENE_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "qv2x/v1/features.pb.h"
#include "tools/qv2x/client/feature_recording.h"

namespace qv2x::cli {

// Frames between a clone and its source, and between two clones of one source.
inline constexpr uint64_t kCloneLagFrames = 1;

struct ReplayAgent {
  int id = 0;
  int source = 0;    // the recorded agent whose messages it sends
  uint64_t lag = 0;  // frames behind that agent
};

// The first `n` agents of a replay of `recording`: the recorded ones (the ego first), then
// clones with ids above every id of the recorded scene.
absl::StatusOr<std::vector<ReplayAgent>> ReplayAgents(const RecordingHeader& recording,
                                                      const std::string& scene_yaml, int n);

// A recording's messages by (agent, frame).
using RecordedMessages = std::map<std::pair<int, uint64_t>, v1::FeatureMessage>;
absl::StatusOr<RecordedMessages> IndexRecording(const Recording& recording);

// The recorded frames a replay cycles through: the longest run of frames in which every
// recorded agent is within `comm_range_m` of the ego (less a margin for the clones' lag),
// so that fusion takes every agent rather than leave the far ones out, played forward then
// backward so that no pose jumps when the cycle starts over. All frames when no run is
// two frames long.
absl::StatusOr<std::vector<uint64_t>> ReplayFrameCycle(const RecordingHeader& recording,
                                                       const RecordedMessages& messages,
                                                       double comm_range_m);

// The recorded scene (`scene_yaml`, its text) listing `agents`, named `<scene>_replay<n>`,
// ticking at `rate_hz` (the fusion service's frame window grows with it). Checked by
// laying out its simulator, as the fusion service will.
absl::StatusOr<std::string> ReplaySceneYaml(const std::string& scene_yaml,
                                            const std::vector<ReplayAgent>& agents, double rate_hz);

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_CLIENT_REPLAY_SCENE_H_
