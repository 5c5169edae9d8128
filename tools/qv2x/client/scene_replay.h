// Replays recorded feature messages into a running fusion service from this one process:
// one gRPC stream per replay agent (replay_scene.h), each message renamed to its agent and
// frame and stamped with its send time as capture time, so the fusion service's end-to-end
// latency runs from the send of a frame's first message to its boxes. Agents cost nothing.
#ifndef QV2X_TOOLS_QV2X_CLIENT_SCENE_REPLAY_H_
#define QV2X_TOOLS_QV2X_CLIENT_SCENE_REPLAY_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "qv2x/v1/features.grpc.pb.h"
#include "tools/qv2x/client/feature_recording.h"
#include "tools/qv2x/client/replay_scene.h"

namespace qv2x::cli {

struct ReplayPhase {
  std::string precision;                       // of the recorded encoders, for the results
  const RecordedMessages* messages = nullptr;  // the recorded agents'
  std::vector<uint64_t> cycle;  // recorded frames to play, in turn (ReplayFrameCycle)
  uint64_t first_frame = 0;     // frame ids [first, first + warmup + frames)
  int64_t warmup = 0;           // sent, not measured
  int64_t frames = 0;           // measured
  double rate_hz = 10;
};

class ReplayStreams {
 public:
  // Opens every agent's stream and a WatchDetections subscription.
  static absl::StatusOr<std::unique_ptr<ReplayStreams>> Open(const std::string& fusion_address,
                                                             std::vector<ReplayAgent> agents);
  ~ReplayStreams();

  // Sends the phase's frames at its rate (every agent's frame-i message at t0 + i / rate,
  // late sends are not skipped), waits until fusion closed them all, and measures the
  // frames after the warm-up: frames_sent, frames_fused, frames_dropped, frames_partial
  // (fused while an agent's message had not arrived), agents_per_frame_{min,mean} (fused),
  // fused_frames_per_second,
  // e2e_latency_{p50,p95,p99,max}_s, fuse_{p50,p99}_s, fused_after_last_send,
  // last_frame_fused, rejected {reason: count}, fusion_frames_fused / _dropped (the
  // service's own counts), loadavg_start / _end, sustained.
  absl::StatusOr<nlohmann::json> Run(const ReplayPhase& phase, double latency_bound_s);
  // The fusion service's ego half: "fp32" or "int8".
  absl::Status SetFusionPrecision(const std::string& precision);

 private:
  struct Stream;
  struct Seen {
    v1::DetectionFrame frame;
    std::chrono::steady_clock::time_point at;
  };
  ReplayStreams() = default;
  void Watch();
  absl::StatusOr<v1::FusionStatus> Status();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Fusion::Stub> stub_;
  std::vector<ReplayAgent> agents_;
  std::vector<std::unique_ptr<Stream>> streams_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Seen> seen_;                   // every DetectionFrame, in arrival order
  std::map<std::string, int64_t> rejected_;  // by reason, every stream
  std::optional<uint64_t> closed_;           // highest frame_closed notice
  std::string broken_;                       // why a stream or the watch ended early

  grpc::ClientContext watch_ctx_;
  std::thread watcher_;
  std::atomic<bool> stopping_{false};
};

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_CLIENT_SCENE_REPLAY_H_
