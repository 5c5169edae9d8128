#include "core/baselines/point_message.h"

#include "absl/strings/str_cat.h"

namespace qv2x::baselines {

absl::StatusOr<std::string> EncodePointMessage(const MessageHeader& header,
                                               const PointCloud& points, Compression compression) {
  if (points.size() > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(points.size(), " points do not fit a message"));
  }
  std::string body;
  body.reserve(4 + points.size() * kPointBytes);
  ByteWriter w(&body);
  w.U32(static_cast<uint32_t>(points.size()));
  for (const Point& p : points) {
    w.F32(p.x);
    w.F32(p.y);
    w.F32(p.z);
    w.F32(p.intensity);
  }
  return FrameMessage(MessageKind::kPoints, header, body, compression);
}

absl::StatusOr<PointMessage> DecodePointMessage(std::string_view message,
                                                const DecodeLimits& limits) {
  absl::StatusOr<UnframedMessage> m = UnframeMessage(message, MessageKind::kPoints, limits);
  if (!m.ok()) return m.status();
  ByteReader r(m->body);
  if (r.remaining() < 4) return absl::DataLossError("point message body lacks its count");
  const uint64_t count = r.U32();
  if (r.remaining() != count * kPointBytes) {
    return absl::DataLossError(absl::StrCat("point message body holds ", r.remaining(),
                                            " bytes after its count, ", count, " points take ",
                                            count * kPointBytes));
  }
  PointMessage out;
  out.header = m->header;
  out.points.resize(count);
  for (Point& p : out.points) {
    p.x = r.F32();
    p.y = r.F32();
    p.z = r.F32();
    p.intensity = r.F32();
  }
  return out;
}

}  // namespace qv2x::baselines
