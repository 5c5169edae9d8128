// Early fusion's message: an agent's LiDAR points in its own frame, float32 x, y, z,
// intensity (16 bytes a point) after the 63-byte header and a u32 count; raw or zstd
// (docs/detection.md "Fusion baselines").
#ifndef QV2X_CORE_BASELINES_POINT_MESSAGE_H_
#define QV2X_CORE_BASELINES_POINT_MESSAGE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/baselines/message_frame.h"
#include "core/data/frame.h"

namespace qv2x::baselines {

inline constexpr size_t kPointBytes = 16;

absl::StatusOr<std::string> EncodePointMessage(const MessageHeader& header,
                                               const PointCloud& points,
                                               Compression compression = Compression::kNone);

struct PointMessage {
  MessageHeader header;
  PointCloud points;  // the sender's frame
};

// DataLoss when the body's length disagrees with its count.
absl::StatusOr<PointMessage> DecodePointMessage(std::string_view message,
                                                const DecodeLimits& limits = {});

}  // namespace qv2x::baselines

#endif  // QV2X_CORE_BASELINES_POINT_MESSAGE_H_
