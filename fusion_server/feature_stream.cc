#include "fusion_server/feature_stream.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/impl/codegen/proto_utils.h"

namespace qv2x::fusion {

FeatureStream::FeatureStream(Handler* handler, grpc::CallbackServerContext* ctx, size_t max_queued)
    : handler_(handler), ctx_(ctx), max_queued_(max_queued) {
  Sync();
  StartRead(&in_);
}

void FeatureStream::Sync() {
  // Reactions run one after another on gRPC's threads, ordered by hand-offs inside gRPC that
  // ThreadSanitizer cannot see; taking the lock at each boundary makes the order explicit.
  std::lock_guard<std::mutex> lock(mu_);
}

void FeatureStream::Push(v1::FeatureStreamReply reply) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ending_) return;
    // Only the latest closed frame matters to an agent: notices waiting behind each other
    // merge into one.
    if (reply.has_frame_closed() && !queue_.empty() && queue_.back().has_frame_closed()) {
      queue_.back().set_frame_closed(std::max(queue_.back().frame_closed(), reply.frame_closed()));
    } else if (queue_.size() >= max_queued_) {
      ending_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                             absl::StrCat(queue_.size(), " replies are waiting to be read"));
      queue_.clear();
    } else {
      queue_.push_back(std::move(reply));
    }
  }
  Pump();
}

void FeatureStream::End(grpc::Status status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ending_) ending_ = std::move(status);
  }
  Pump();
}

void FeatureStream::Pump() {
  std::optional<grpc::Status> finish;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (writing_ || finished_) return;
    if (!queue_.empty() && !write_failed_) {
      const std::string bytes = queue_.front().SerializeAsString();
      queue_.pop_front();
      grpc::Slice slice(bytes);
      out_ = grpc::ByteBuffer(&slice, 1);
      writing_ = true;
    } else if (ending_) {
      finished_ = true;
      finish = *ending_;
    } else {
      return;
    }
  }
  // Outside the lock: gRPC may run the reaction on this thread.
  if (finish) {
    Finish(*finish);
  } else {
    StartWrite(&out_);
  }
}

void FeatureStream::OnReadDone(bool ok) {
  Sync();
  if (!ok) {  // the agent half-closed, or the call broke
    End(grpc::Status::OK);
    return;
  }
  ++messages_;
  v1::FeatureMessage msg;
  const size_t bytes = in_.Length();
  grpc::Status parsed = grpc::SerializationTraits<v1::FeatureMessage>::Deserialize(&in_, &msg);
  if (!parsed.ok()) {
    handler_->OnUnparseable(*this, bytes);
    End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     absl::StrCat("message ", messages_, " (", bytes,
                                  " bytes) is not a qv2x.v1.FeatureMessage")));
    return;
  }
  absl::StatusOr<v1::FeatureStreamReply> reply = handler_->OnMessage(*this, msg);
  if (!reply.ok()) {
    End(grpc::Status(static_cast<grpc::StatusCode>(reply.status().code()),
                     std::string(reply.status().message())));
    return;
  }
  Push(*std::move(reply));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ending_) return;
  }
  StartRead(&in_);
}

void FeatureStream::OnWriteDone(bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      write_failed_ = true;
      queue_.clear();
      if (!ending_) ending_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the agent is gone");
    }
  }
  Pump();
}

void FeatureStream::OnCancel() { End(grpc::Status::CANCELLED); }

void FeatureStream::OnDone() {
  Sync();
  handler_->OnDone(*this);
  delete this;
}

}  // namespace qv2x::fusion
