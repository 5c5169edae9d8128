// One WatchDetections subscriber, as a gRPC callback reactor: it holds no thread while it
// waits, and a subscriber that reads slowly (or not at all) loses the oldest frames beyond
// `max_queued` instead of blocking the service or growing without bound.
#ifndef QV2X_FUSION_SERVER_DETECTION_WATCH_H_
#define QV2X_FUSION_SERVER_DETECTION_WATCH_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

#include "grpcpp/grpcpp.h"
#include "qv2x/v1/features.pb.h"

namespace qv2x::fusion {

class DetectionWatch final : public grpc::ServerWriteReactor<v1::DetectionFrame> {
 public:
  // `on_done` runs once the call is over, right before the reactor is deleted.
  DetectionWatch(size_t max_queued, std::function<void(DetectionWatch*)> on_done)
      : max_queued_(max_queued), on_done_(std::move(on_done)) {
    std::lock_guard<std::mutex> lock(mu_);  // publishes the members (see OnDone)
  }

  // Any thread. Returns how many queued frames were dropped to make room (0 or 1).
  int Push(const v1::DetectionFrame& frame);
  // Any thread: ends the call with `status` once the frame being written is out.
  void End(grpc::Status status);

 private:
  void OnWriteDone(bool ok) override;
  void OnCancel() override { End(grpc::Status::CANCELLED); }
  void OnDone() override;
  void Pump();  // without mu_ held

  const size_t max_queued_;
  std::function<void(DetectionWatch*)> on_done_;
  std::mutex mu_;
  std::deque<v1::DetectionFrame> queue_;
  v1::DetectionFrame writing_frame_;
  bool writing_ = false;
  std::optional<grpc::Status> ending_;
  bool finished_ = false;
};

}  // namespace qv2x::fusion

#endif  // QV2X_FUSION_SERVER_DETECTION_WATCH_H_
