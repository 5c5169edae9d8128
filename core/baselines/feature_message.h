// What an agent would send without the codebook: its [C, H, W] float32 backbone map
// (channel-major, row-major) after the 63-byte header and u16 C, H, W; raw or zstd
// (docs/detection.md "Fusion baselines").
#ifndef QV2X_CORE_BASELINES_FEATURE_MESSAGE_H_
#define QV2X_CORE_BASELINES_FEATURE_MESSAGE_H_

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/baselines/message_frame.h"

namespace qv2x::baselines {

// `values` holds shape[0] · shape[1] · shape[2] floats; every dimension in [1, 65535].
absl::StatusOr<std::string> EncodeFeatureMessage(const MessageHeader& header,
                                                 const std::array<int64_t, 3>& shape,
                                                 absl::Span<const float> values,
                                                 Compression compression = Compression::kNone);

struct FeatureMessage {
  MessageHeader header;
  std::array<int64_t, 3> shape{};
  std::vector<float> values;
};

absl::StatusOr<FeatureMessage> DecodeFeatureMessage(std::string_view message,
                                                    const DecodeLimits& limits = {});

}  // namespace qv2x::baselines

#endif  // QV2X_CORE_BASELINES_FEATURE_MESSAGE_H_
