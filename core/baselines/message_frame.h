// The framing shared by the messages the fusion baselines send instead of codebook indices
// (boxes, points, FP32 features; docs/detection.md "Fusion baselines"): a fixed 63-byte
// header naming the sender and its pose, then the body, raw or as one zstd frame.
// Little-endian throughout. Decoding checks every length before touching a buffer.
#ifndef QV2X_CORE_BASELINES_MESSAGE_FRAME_H_
#define QV2X_CORE_BASELINES_MESSAGE_FRAME_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/geometry/transform.h"

namespace qv2x::baselines {

enum class MessageKind : uint8_t { kBoxes = 1, kPoints = 2, kFeatures = 3 };
enum class Compression : uint8_t { kNone = 0, kZstd = 1 };

// Who sent the message and from where: the ego needs the pose to move the content into
// its own frame, as it does for codebook indices.
struct MessageHeader {
  int32_t agent_id = 0;
  uint64_t frame_id = 0;
  Pose lidar_pose;  // world frame, sent as 6 float64
};

// version u8, kind u8, compression u8, agent_id i32, frame_id u64, pose 6 x f64.
inline constexpr size_t kMessageHeaderBytes = 1 + 1 + 1 + 4 + 8 + 6 * 8;
inline constexpr uint8_t kMessageVersion = 1;

struct DecodeLimits {
  uint64_t max_body_bytes = 256ull << 20;  // after decompression
};

// Header + body (zstd level 3 when asked).
absl::StatusOr<std::string> FrameMessage(MessageKind kind, const MessageHeader& header,
                                         std::string_view body, Compression compression);

struct UnframedMessage {
  MessageHeader header;
  Compression compression = Compression::kNone;
  std::string body;  // decompressed
};

// Refuses another version or kind, a truncated header, a body over the limit and a zstd
// body that is not exactly one frame of known size.
absl::StatusOr<UnframedMessage> UnframeMessage(std::string_view message, MessageKind kind,
                                               const DecodeLimits& limits);

// Little-endian append / read helpers for the bodies.
class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void U16(uint16_t v);
  void I16(int16_t v) { U16(static_cast<uint16_t>(v)); }
  void U32(uint32_t v);
  void U64(uint64_t v);
  void F32(float v);
  void F64(double v);

 private:
  std::string* out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  size_t remaining() const { return in_.size() - pos_; }
  // The caller checks remaining() first; reading past the end is a programming error.
  uint8_t U8() { return static_cast<uint8_t>(in_[pos_++]); }
  uint16_t U16();
  int16_t I16() { return static_cast<int16_t>(U16()); }
  uint32_t U32();
  uint64_t U64();
  float F32();
  double F64();

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace qv2x::baselines

#endif  // QV2X_CORE_BASELINES_MESSAGE_FRAME_H_
