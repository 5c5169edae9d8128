// qv2x.v1.Fusion: receives every agent's index stream, validates and acknowledges each
// message, assembles frames, fuses them on one worker thread, publishes detections to
// watchers and scores them on another thread. Metrics per SPEC §10.
#ifndef QV2X_FUSION_SERVER_FUSION_SERVICE_H_
#define QV2X_FUSION_SERVER_FUSION_SERVICE_H_

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "fusion_server/frame_assembler.h"
#include "fusion_server/fusion_engine.h"
#include "fusion_server/message_validator.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "qv2x/v1/features.grpc.pb.h"

namespace qv2x::fusion {

struct FusionOptions {
  AssemblerOptions assembler;
  uint64_t max_message_bytes = 4 << 20;
  uint64_t max_decoded_bytes = 16 << 20;
  size_t watcher_queue = 256;  // frames buffered per slow watcher before the oldest go
};

class FusionService final : public v1::Fusion::Service {
 public:
  FusionService(FusionEngine* engine, FusionOptions options, prometheus::Registry& registry);
  ~FusionService() override;

  void Start();  // worker threads
  void Stop();   // ends watchers and workers; streams end with the server

  grpc::Status StreamFeatures(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::FeatureStreamReply, v1::FeatureMessage>* stream) override;
  grpc::Status WatchDetections(grpc::ServerContext* ctx, const v1::WatchRequest* request,
                               grpc::ServerWriter<v1::DetectionFrame>* writer) override;
  grpc::Status GetStatus(grpc::ServerContext* ctx, const v1::FusionStatusRequest* request,
                         v1::FusionStatus* response) override;
  grpc::Status SetPrecision(grpc::ServerContext* ctx, const v1::FusionPrecisionRequest* request,
                            v1::FusionStatus* response) override;
  grpc::Status LoadModel(grpc::ServerContext* ctx, const v1::FusionLoadModelRequest* request,
                         v1::FusionStatus* response) override;
  grpc::Status RetireCodebook(grpc::ServerContext* ctx, const v1::RetireCodebookRequest* request,
                              v1::FusionStatus* response) override;

 private:
  struct Connection;
  struct Watcher;
  struct Metrics;

  void FuseLoop();
  void ScoreLoop();
  void Publish(const v1::DetectionFrame& frame);
  void NotifyClosed(uint64_t frame_id);
  void AgentLink(int agent_id, int delta);
  void CodebooksChanged();  // validator and gauge follow the engine's held codebooks

  FusionEngine* engine_;
  FusionOptions options_;
  MessageValidator validator_;
  std::unique_ptr<Metrics> metrics_;

  std::mutex mu_;  // assembler_, links_, connections_, watchers_, ap_, counters below
  std::condition_variable cv_;
  FrameAssembler assembler_;
  std::map<int, int> links_;  // open streams per agent
  std::set<std::shared_ptr<Connection>> connections_;
  std::set<std::shared_ptr<Watcher>> watchers_;
  std::vector<v1::ClassAp> ap_;
  int64_t ap_frames_ = 0;
  struct CodebookUse {
    uint64_t messages = 0, last_frame_id = 0;
  };
  std::map<std::string, CodebookUse> codebook_use_;  // by digest
  std::map<int, std::string> agent_codebook_;        // digest of each agent's latest message
  uint64_t frames_fused_ = 0, frames_dropped_ = 0;
  bool stopping_ = false;

  std::mutex score_mu_;
  std::condition_variable score_cv_;
  std::deque<FusedFrame> score_queue_;

  std::thread fuse_thread_, score_thread_;
};

}  // namespace qv2x::fusion

#endif  // QV2X_FUSION_SERVER_FUSION_SERVICE_H_
