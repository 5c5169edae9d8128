// The agent's side of Fusion.StreamFeatures: one stream at a time to the fusion service,
// re-opened with back-off when it breaks. A reader thread takes the fusion service's
// replies: rejections are counted, and frame-closed notices give the watermark that a
// lock-step agent paces on.
#ifndef QV2X_AGENT_FEATURE_LINK_H_
#define QV2X_AGENT_FEATURE_LINK_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "grpcpp/grpcpp.h"
#include "qv2x/v1/features.grpc.pb.h"

namespace qv2x::agent {

class FeatureLink {
 public:
  using RejectFn = std::function<void(const v1::FeatureAck&)>;
  FeatureLink(const std::string& fusion_address, int max_message_bytes, RejectFn on_reject);
  ~FeatureLink();

  // Opens a stream if none is open; waits at most `timeout` for the channel. False when
  // the fusion service is unreachable.
  bool Connect(std::chrono::milliseconds timeout);
  bool connected() const { return stream_ != nullptr && !broken_.load(); }
  // False (and the link closes) when the stream is broken.
  bool Send(const v1::FeatureMessage& message);
  // Cancels the stream: what fusion has not read yet is lost.
  void Close();
  // Half-closes the stream and waits up to `timeout` for the fusion service to read every
  // message sent and end the stream, then closes: a stopping agent loses nothing in flight.
  void Drain(std::chrono::milliseconds timeout);

  // Highest frame the fusion service closed on this stream; nullopt before the first.
  std::optional<uint64_t> closed() const;
  // Waits until closed() >= frame_id, the stream breaks, or `timeout` passes.
  void WaitClosed(uint64_t frame_id, std::chrono::milliseconds timeout);

 private:
  void ReadLoop();

  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Fusion::Stub> stub_;
  RejectFn on_reject_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::FeatureMessage, v1::FeatureStreamReply>> stream_;
  std::thread reader_;
  std::atomic<bool> broken_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<uint64_t> closed_;
};

}  // namespace qv2x::agent

#endif  // QV2X_AGENT_FEATURE_LINK_H_
