// qv2x.v1.Fusion: receives every agent's index stream, validates and acknowledges each
// message, assembles frames, fuses them on one worker thread, publishes detections to
// watchers and scores them on another thread. When fusing falls behind, the oldest closed
// frames are dropped (FuseBacklog), counted and logged, so it never stalls. Metrics per
// SPEC §10.
#ifndef QV2X_FUSION_SERVER_FUSION_SERVICE_H_
#define QV2X_FUSION_SERVER_FUSION_SERVICE_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "fusion_server/detection_watch.h"
#include "fusion_server/feature_stream.h"
#include "fusion_server/frame_assembler.h"
#include "fusion_server/fuse_backlog.h"
#include "fusion_server/fusion_engine.h"
#include "fusion_server/message_validator.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "qv2x/v1/features.grpc.pb.h"
#include "services/log_limiter.h"

namespace qv2x::fusion {

struct FusionOptions {
  AssemblerOptions assembler;
  uint64_t max_message_bytes = 4 << 20;
  uint64_t max_decoded_bytes = 16 << 20;
  int64_t max_capture_ahead_ns = 5'000'000'000;  // see ValidatorOptions
  int64_t max_capture_age_ns = 60'000'000'000;
  // zstd dictionaries agents may compress against, by digest (--zstd_dictionary).
  std::map<std::string, std::shared_ptr<const codec::ZstdDictionary>> dictionaries;
  size_t watcher_queue = 256;  // frames buffered per slow watcher before the oldest go
  size_t stream_queue = 1024;  // replies waiting on an agent that does not read them
  // Closed frames waiting to be fused; past this many the oldest are dropped (overload).
  size_t max_fuse_backlog = 2;
  // Fused frames waiting to be scored; past this many the oldest go unscored.
  size_t score_queue = 16;
  // Score fused frames against the scene's ground truth (rolling AP). Off for streams whose
  // agents are not the scene's (a replay), where it would only cost CPU.
  bool score = true;
  // LoadModel's paths must lie inside this folder (`..`, absolute paths elsewhere and
  // symlinks out are refused); empty: any path this process can read.
  std::string artifacts_dir;
  // Whether the peer of a feature stream may speak for `agent_id` (e.g. the id in its TLS
  // certificate); called once per stream, on its first message. Empty: every peer may. A
  // refusal is counted (reason "identity") and ends the stream with its status.
  std::function<absl::Status(const grpc::ServerContextBase& ctx, int agent_id)> authorize_agent;
};

// The two streaming RPCs are callback reactors (no thread per open stream, so idle or
// abandoned streams cannot exhaust the server); the unary ones are synchronous.
class FusionService final
    : public v1::Fusion::WithCallbackMethod_WatchDetections<
          v1::Fusion::WithRawCallbackMethod_StreamFeatures<v1::Fusion::Service>>,
      private FeatureStream::Handler {
 public:
  FusionService(FusionEngine* engine, FusionOptions options, prometheus::Registry& registry);
  ~FusionService() override;

  void Start();  // worker threads
  void Stop();   // ends watchers and workers; streams end with the server

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StreamFeatures(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerWriteReactor<v1::DetectionFrame>* WatchDetections(
      grpc::CallbackServerContext* ctx, const v1::WatchRequest* request) override;
  grpc::Status GetStatus(grpc::ServerContext* ctx, const v1::FusionStatusRequest* request,
                         v1::FusionStatus* response) override;
  grpc::Status SetPrecision(grpc::ServerContext* ctx, const v1::FusionPrecisionRequest* request,
                            v1::FusionStatus* response) override;
  grpc::Status LoadModel(grpc::ServerContext* ctx, const v1::FusionLoadModelRequest* request,
                         v1::FusionStatus* response) override;
  grpc::Status RetireCodebook(grpc::ServerContext* ctx, const v1::RetireCodebookRequest* request,
                              v1::FusionStatus* response) override;

 private:
  struct Metrics;

  // FeatureStream::Handler
  absl::StatusOr<v1::FeatureStreamReply> OnMessage(FeatureStream& stream,
                                                   const v1::FeatureMessage& msg) override;
  void OnUnparseable(FeatureStream& stream, size_t bytes) override;
  void OnDone(FeatureStream& stream) override;
  void CountRejection(v1::RejectReason reason, const std::string& detail, int agent_id,
                      uint64_t frame_id);
  // Each message of a closed frame that is not fused, with why.
  void Discard(const ClosedFrame& f, const char* reason);

  void FuseLoop();
  // A closed frame that is not fused: out of window, without the ego, or pushed out of the
  // backlog by newer frames (`overload`).
  void Skip(const ClosedFrame& f, bool overload);
  void Fuse(const ClosedFrame& f);
  void ScoreLoop();
  void Publish(const v1::DetectionFrame& frame);
  void NotifyClosed(uint64_t frame_id);
  void AgentLink(int agent_id, int delta);
  void CodebooksChanged();  // validator and gauge follow the engine's held codebooks

  FusionEngine* engine_;
  FusionOptions options_;
  MessageValidator validator_;
  std::unique_ptr<Metrics> metrics_;

  std::mutex mu_;  // assembler_, links_, streams_, watchers_, ap_, counters below
  std::condition_variable cv_;
  FrameAssembler assembler_;
  FuseBacklog backlog_;
  std::map<int, int> links_;  // open streams per agent
  std::set<FeatureStream*> streams_;
  std::set<DetectionWatch*> watchers_;
  std::vector<v1::ClassAp> ap_;
  int64_t ap_frames_ = 0;
  struct CodebookUse {
    uint64_t messages = 0, last_frame_id = 0;
  };
  std::map<std::string, CodebookUse> codebook_use_;  // by digest
  std::map<int, std::string> agent_codebook_;        // digest of each agent's latest message
  uint64_t frames_fused_ = 0, frames_dropped_ = 0;
  services::LogLimiter rejection_log_;  // per reason
  services::LogLimiter overload_log_{1, absl::Seconds(10)};
  bool stopping_ = false;

  std::mutex score_mu_;
  std::condition_variable score_cv_;
  std::deque<FusedFrame> score_queue_;

  std::thread fuse_thread_, score_thread_;
};

}  // namespace qv2x::fusion

#endif  // QV2X_FUSION_SERVER_FUSION_SERVICE_H_
