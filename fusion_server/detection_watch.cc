#include "fusion_server/detection_watch.h"

namespace qv2x::fusion {

int DetectionWatch::Push(const v1::DetectionFrame& frame) {
  int dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ending_) return 0;
    if (queue_.size() >= max_queued_) {
      queue_.pop_front();
      dropped = 1;
    }
    queue_.push_back(frame);
  }
  Pump();
  return dropped;
}

void DetectionWatch::End(grpc::Status status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ending_) ending_ = std::move(status);
    queue_.clear();
  }
  Pump();
}

void DetectionWatch::Pump() {
  std::optional<grpc::Status> finish;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (writing_ || finished_) return;
    if (ending_) {
      finished_ = true;
      finish = *ending_;
    } else if (!queue_.empty()) {
      writing_frame_ = std::move(queue_.front());
      queue_.pop_front();
      writing_ = true;
    } else {
      return;
    }
  }
  // Outside the lock: gRPC may run the reaction on this thread.
  if (finish) {
    Finish(*finish);
  } else {
    StartWrite(&writing_frame_);
  }
}

void DetectionWatch::OnWriteDone(bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok && !ending_) ending_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "watcher gone");
  }
  Pump();
}

void DetectionWatch::OnDone() {
  // gRPC orders OnDone after the constructor through hand-offs ThreadSanitizer cannot see;
  // the lock makes that order explicit.
  { std::lock_guard<std::mutex> lock(mu_); }
  on_done_(this);
  delete this;
}

}  // namespace qv2x::fusion
