// One agent: the frame loop (simulate its own sweep, encode, code the indices, stream them
// to the fusion service) and the qv2x.v1.AgentControl service. Control changes (precision,
// model) are queued and applied by the loop between two frames, so every frame is encoded
// by exactly one model and none is dropped for a swap.
#ifndef QV2X_AGENT_AGENT_RUNNER_H_
#define QV2X_AGENT_AGENT_RUNNER_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "agent/agent_model.h"
#include "agent/feature_link.h"
#include "core/codec/zstd_dictionary.h"
#include "core/sim/scene_playback.h"
#include "core/voxel/cell_selection.h"
#include "prometheus/registry.h"
#include "qv2x/v1/agent.grpc.pb.h"

namespace qv2x::agent {

enum class Pace { kRealtime, kLockstep };

struct AgentOptions {
  int agent_id = 0;
  std::string config_path;  // stage YAML shared by every model this agent loads
  std::string fusion_address;
  codec::EncodeOptions codec;
  // Held for codec.dictionary (which points into it); null: none.
  std::shared_ptr<const codec::ZstdDictionary> dictionary;
  std::optional<CellSelection> sparse;  // at start; nullopt: dense maps
  Pace pace = Pace::kRealtime;
  int64_t epoch_ns = 0;      // realtime: wall-clock time of tick 0
  uint64_t start_frame = 0;  // lockstep: first frame id
  int ahead = 1;             // lockstep: frames sent beyond the fusion's closed watermark + 1
  uint64_t max_frames = 0;   // stop after this many frames sent (0: run until stopped)
  int max_message_bytes = 4 << 20;
};

class AgentRunner final : public v1::AgentControl::Service {
 public:
  AgentRunner(AgentOptions options, const sim::ScenePlayback* playback,
              std::shared_ptr<AgentModel> model, Precision precision,
              prometheus::Registry& registry);
  ~AgentRunner() override;

  // The frame loop; returns when Stop() is called or max_frames were sent.
  void Run();
  void Stop();

  grpc::Status GetStatus(grpc::ServerContext* ctx, const v1::AgentStatusRequest* request,
                         v1::AgentStatus* response) override;
  grpc::Status SetPrecision(grpc::ServerContext* ctx, const v1::SetPrecisionRequest* request,
                            v1::ControlReply* response) override;
  grpc::Status LoadModel(grpc::ServerContext* ctx, const v1::LoadModelRequest* request,
                         v1::ControlReply* response) override;
  grpc::Status SetSparsity(grpc::ServerContext* ctx, const v1::SetSparsityRequest* request,
                           v1::ControlReply* response) override;

 private:
  struct Metrics;
  struct Change {
    std::shared_ptr<AgentModel> model;  // null: keep
    std::optional<Precision> precision;
    std::optional<std::optional<CellSelection>> sparse;  // set: the new setting (nullopt: dense)
  };

  // Queues a change and waits until the loop applied it; the first frame it affects.
  grpc::Status Apply(Change change, grpc::ServerContext* ctx, v1::ControlReply* reply);
  void ApplyPending(uint64_t next_frame);
  void FillStatus(v1::AgentStatus* s);
  // Digests of the codebooks the fusion service accepts now.
  absl::StatusOr<std::set<std::string>> FusionCodebooks() const;
  // Next frame to encode, or nullopt to re-check the loop's conditions.
  std::optional<uint64_t> NextFrame();
  bool EncodeAndSend(uint64_t frame_id);

  AgentOptions options_;
  const sim::ScenePlayback* playback_;
  std::unique_ptr<Metrics> metrics_;
  FeatureLink link_;

  std::mutex mu_;  // everything below
  std::condition_variable cv_;
  std::shared_ptr<AgentModel> model_;
  Precision precision_;
  std::optional<CellSelection> sparse_;
  uint64_t generation_ = 1;
  std::optional<Change> pending_;
  uint64_t pending_id_ = 0, applied_id_ = 0, applied_frame_ = 0;
  uint64_t frames_sent_ = 0, bytes_sent_ = 0, frames_skipped_ = 0, frames_rejected_ = 0;
  std::optional<uint64_t> last_sent_;
  std::optional<uint64_t> last_done_;  // sent, or absent from the played-back dataset
  uint64_t next_lockstep_ = 0;
  std::optional<uint64_t> connect_base_;  // lockstep: watermark stand-in after (re)connect
  uint64_t stride_ = 1;                   // realtime: ticks between frames (a power of two)
  std::deque<uint64_t> in_flight_;        // sent on this stream, not yet closed
  double cycle_ema_s_ = 0;                // realtime: smoothed frame time
  std::atomic<bool> stop_{false};
};

}  // namespace qv2x::agent

#endif  // QV2X_AGENT_AGENT_RUNNER_H_
