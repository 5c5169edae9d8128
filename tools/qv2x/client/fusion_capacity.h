// `qv2x scene bench --replay DIR`: how many agents one fusion service keeps up with.
// For each agent count it starts the fusion service the scene would run (qv2x-fusion with
// a generated scene listing exactly those agents; replay_scene.h), streams the recorded
// messages at the rate (scene_replay.h), once per precision (the ego half switched with
// SetPrecision, each phase fed its own encoders' recording), and reports fused frames/s,
// end-to-end latency and dropped frames; the largest count that sustains the rate with a
// p99 under the bound is the capacity. Table on stdout, JSON and a gnuplot PNG on request.
#ifndef QV2X_TOOLS_QV2X_CLIENT_FUSION_CAPACITY_H_
#define QV2X_TOOLS_QV2X_CLIENT_FUSION_CAPACITY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace qv2x::cli {

struct CapacityOptions {
  std::string recording_dir;
  std::vector<int> agent_counts;
  double rate_hz = 10;
  int64_t frames = 100;  // measured per run, after the warm-up
  int64_t warmup = 10;
  std::vector<std::string> precisions;  // empty: every precision recorded
  double latency_bound_s = 0.1;
  std::string json_path, plot_path;
  std::string note;     // measuring conditions, kept in the JSON (e.g. "training job running")
  std::string command;  // as typed, kept in the JSON
  // Stream into this running fusion service instead of starting one (one agent count; it
  // must run the scene --write-scene gives).
  std::string fusion_address;
  std::string write_scene;   // write the replay scene for the one agent count and stop
  int max_fuse_backlog = 0;  // the started fusion service's --max_fuse_backlog; 0: default
  std::string run_dir;       // generated scenes and fusion logs; default .qv2x-run/replay-<scene>
};

absl::Status RunFusionCapacity(const CapacityOptions& options);

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_CLIENT_FUSION_CAPACITY_H_
