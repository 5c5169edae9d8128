#include "core/baselines/feature_message.h"

#include "absl/strings/str_cat.h"

namespace qv2x::baselines {

absl::StatusOr<std::string> EncodeFeatureMessage(const MessageHeader& header,
                                                 const std::array<int64_t, 3>& shape,
                                                 absl::Span<const float> values,
                                                 Compression compression) {
  for (int64_t d : shape) {
    if (d < 1 || d > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("feature map dimension ", d, " lies outside [1, 65535]"));
    }
  }
  const uint64_t n = static_cast<uint64_t>(shape[0]) * shape[1] * shape[2];
  if (values.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("feature map of ", shape[0], " x ", shape[1],
                                                   " x ", shape[2], " needs ", n, " values, got ",
                                                   values.size()));
  }
  std::string body;
  body.reserve(6 + n * sizeof(float));
  ByteWriter w(&body);
  for (int64_t d : shape) w.U16(static_cast<uint16_t>(d));
  for (float v : values) w.F32(v);
  return FrameMessage(MessageKind::kFeatures, header, body, compression);
}

absl::StatusOr<FeatureMessage> DecodeFeatureMessage(std::string_view message,
                                                    const DecodeLimits& limits) {
  absl::StatusOr<UnframedMessage> m = UnframeMessage(message, MessageKind::kFeatures, limits);
  if (!m.ok()) return m.status();
  ByteReader r(m->body);
  if (r.remaining() < 6) return absl::DataLossError("feature message body lacks its shape");
  FeatureMessage out;
  out.header = m->header;
  for (int64_t& d : out.shape) d = r.U16();
  const uint64_t n = static_cast<uint64_t>(out.shape[0]) * out.shape[1] * out.shape[2];
  if (n == 0) return absl::InvalidArgumentError("feature map with a zero dimension");
  if (r.remaining() != n * sizeof(float)) {
    return absl::DataLossError(absl::StrCat("feature message body holds ", r.remaining(),
                                            " bytes after its shape, the map takes ",
                                            n * sizeof(float)));
  }
  out.values.resize(n);
  for (float& v : out.values) v = r.F32();
  return out;
}

}  // namespace qv2x::baselines
