// One agent's feature stream on the server, as a gRPC callback reactor over raw bytes: the
// service parses each message itself, so bytes that are no FeatureMessage end the stream
// with INVALID_ARGUMENT (the generated sync handler would drop them and return OK), and an
// idle or abandoned stream holds no thread. Replies queue here and are written one at a
// time; frame-closed notices coalesce, and a peer that stops reading its replies is cut off
// once `max_queued` pile up.
#ifndef QV2X_FUSION_SERVER_FEATURE_STREAM_H_
#define QV2X_FUSION_SERVER_FEATURE_STREAM_H_

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "qv2x/v1/features.pb.h"

namespace qv2x::fusion {

class FeatureStream final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // A parsed message: the reply, or a status that ends the stream.
    virtual absl::StatusOr<v1::FeatureStreamReply> OnMessage(FeatureStream& stream,
                                                             const v1::FeatureMessage& msg) = 0;
    // Bytes that did not parse; the stream then ends with INVALID_ARGUMENT.
    virtual void OnUnparseable(FeatureStream& stream, size_t bytes) = 0;
    // The stream is over; it is deleted right after.
    virtual void OnDone(FeatureStream& stream) = 0;
  };

  FeatureStream(Handler* handler, grpc::CallbackServerContext* ctx, size_t max_queued);

  // Any thread. Dropped once the stream is ending.
  void Push(v1::FeatureStreamReply reply);
  // Any thread: ends the stream with `status` after the replies already queued.
  void End(grpc::Status status);

  const grpc::CallbackServerContext& context() const { return *ctx_; }
  uint64_t messages() const { return messages_; }  // read so far (reactor thread)

  // Set and read by the handler only (one reactor callback runs at a time per stream): the
  // agent this stream speaks for (from its first message with an id of the scene, once
  // authorized), and whether it counts as connected (from its first accepted message).
  std::optional<int> agent;
  bool linked = false;

 private:
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;
  // Starts the next write or the finish if one is due. Called without mu_ held.
  void Pump();
  void Sync();  // see feature_stream.cc

  Handler* handler_;
  grpc::CallbackServerContext* ctx_;
  const size_t max_queued_;
  grpc::ByteBuffer in_;
  uint64_t messages_ = 0;

  std::mutex mu_;
  std::deque<v1::FeatureStreamReply> queue_;
  grpc::ByteBuffer out_;  // the write in flight
  bool writing_ = false;
  bool write_failed_ = false;
  std::optional<grpc::Status> ending_;  // End() called
  bool finished_ = false;               // Finish() called
};

}  // namespace qv2x::fusion

#endif  // QV2X_FUSION_SERVER_FEATURE_STREAM_H_
