#include "agent/feature_link.h"

#include "services/tls_credentials.h"

namespace qv2x::agent {

FeatureLink::FeatureLink(const std::string& fusion_address, int max_message_bytes,
                         RejectFn on_reject)
    : address_(fusion_address), on_reject_(std::move(on_reject)) {
  grpc::ChannelArguments args = services::ClientChannelArguments(max_message_bytes);
  // Reconnect attempts are paced by the agent loop; keep gRPC's own back-off short so a
  // restarted fusion service is found quickly.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // TLS and the client certificate (the agent's identity) as main configured them.
  channel_ = services::NewChannel(address_, services::ProcessClientSecurity(), args);
  stub_ = v1::Fusion::NewStub(channel_);
}

FeatureLink::~FeatureLink() { Close(); }

bool FeatureLink::Connect(std::chrono::milliseconds timeout) {
  if (connected()) return true;
  Close();
  if (!channel_->WaitForConnected(std::chrono::system_clock::now() + timeout)) return false;
  ctx_ = std::make_unique<grpc::ClientContext>();
  stream_ = stub_->StreamFeatures(ctx_.get());
  broken_ = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_.reset();
  }
  reader_ = std::thread([this] { ReadLoop(); });
  return true;
}

bool FeatureLink::Send(const v1::FeatureMessage& message) {
  if (!connected()) return false;
  if (!stream_->Write(message)) {
    broken_ = true;
    Close();
    return false;
  }
  return true;
}

void FeatureLink::Close() {
  if (!stream_) return;
  broken_ = true;
  ctx_->TryCancel();
  if (reader_.joinable()) reader_.join();
  stream_->Finish().ok();  // cancelled by us: the status says so and nothing more
  stream_.reset();
  ctx_.reset();
  cv_.notify_all();
}

void FeatureLink::Drain(std::chrono::milliseconds timeout) {
  if (connected() && stream_->WritesDone()) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return broken_.load(); });
  }
  Close();
}

void FeatureLink::ReadLoop() {
  v1::FeatureStreamReply reply;
  while (stream_->Read(&reply)) {
    if (reply.has_ack()) {
      if (!reply.ack().accepted() && on_reject_) on_reject_(reply.ack());
    } else if (reply.kind_case() == v1::FeatureStreamReply::kFrameClosed) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!closed_ || reply.frame_closed() > *closed_) closed_ = reply.frame_closed();
      cv_.notify_all();
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);  // a waiter checks broken_ under the lock
    broken_ = true;
  }
  cv_.notify_all();
}

std::optional<uint64_t> FeatureLink::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

void FeatureLink::WaitClosed(uint64_t frame_id, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return broken_.load() || (closed_ && *closed_ >= frame_id); });
}

}  // namespace qv2x::agent
