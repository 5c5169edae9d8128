// `qv2x scene record`: runs a scene's real services (fusion and agents, lock-step) and
// keeps every feature message the agents send, once per encoder precision, for
// `qv2x scene bench --replay`. The agents talk to a tee in this process that forwards each
// message to the fusion service and its replies back, so the scene runs exactly as it
// would without it.
#ifndef QV2X_TOOLS_QV2X_CLIENT_SCENE_RECORD_H_
#define QV2X_TOOLS_QV2X_CLIENT_SCENE_RECORD_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace qv2x::cli {

struct RecordOptions {
  std::string scene_path;
  std::string out_dir;
  int64_t frames = 50;  // frame ids [0, frames) of every agent
  int num_agents = 0;   // the first N scene agents (the ego first); 0: all
  // Encoder precisions to record; empty: fp32, and int8 when the scene has an INT8 artifact.
  std::vector<std::string> precisions;
  std::optional<std::string> codec, checkpoint;
  std::string run_dir;  // logs of the services; empty: .qv2x-run/record-<scene>
};

// Writes out_dir/scene.yaml (the scene with the model the services ran) and
// out_dir/<precision>.qv2xrec (feature_recording.h), printing one line per precision.
absl::Status RecordScene(const RecordOptions& options);

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_CLIENT_SCENE_RECORD_H_
