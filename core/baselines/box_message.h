// Late fusion's message: an agent's detections in its own frame, 17 bytes a box after the
// 63-byte header (docs/detection.md "Fusion baselines"). Body: u16 count, then per box
// u8 class, i16 x y z (cm), u16 l w h (cm), u16 yaw ((yaw + π) in 2π/65536 steps),
// u16 score (score · 65535). So positions are kept to 5 mm, sizes to 5 mm, headings to
// 0.003° and scores to 8e-6: far below what changes an IoU at 0.7.
#ifndef QV2X_CORE_BASELINES_BOX_MESSAGE_H_
#define QV2X_CORE_BASELINES_BOX_MESSAGE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/baselines/message_frame.h"
#include "core/detection/postprocess.h"

namespace qv2x::baselines {

inline constexpr size_t kBoxBytes = 17;
inline constexpr size_t kMaxBoxesPerMessage = 65535;

// InvalidArgument for more than 65535 boxes, a centre beyond ±327.67 m, a size outside
// (0, 655.35] m or a non-finite value; the error names the box.
absl::StatusOr<std::string> EncodeBoxMessage(const MessageHeader& header,
                                             const std::vector<Detection>& boxes,
                                             Compression compression = Compression::kNone);

struct BoxMessage {
  MessageHeader header;
  std::vector<Detection> boxes;  // the sender's frame, as quantised on the wire
};

// DataLoss when the body's length disagrees with its count; InvalidArgument for an
// unknown class.
absl::StatusOr<BoxMessage> DecodeBoxMessage(std::string_view message,
                                            const DecodeLimits& limits = {});

}  // namespace qv2x::baselines

#endif  // QV2X_CORE_BASELINES_BOX_MESSAGE_H_
