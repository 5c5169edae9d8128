#include "core/baselines/box_message.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace qv2x::baselines {
namespace {

constexpr double kTwoPi = 2 * kPi;

absl::StatusOr<int16_t> Centimetres(double m, int box, const char* what) {
  const double cm = std::round(m * 100);
  if (!std::isfinite(cm) || cm < -32767 || cm > 32767) {
    return absl::InvalidArgumentError(
        absl::StrCat("box ", box, ": ", what, " = ", m, " m lies outside +-327.67 m"));
  }
  return static_cast<int16_t>(cm);
}

absl::StatusOr<uint16_t> SizeCentimetres(double m, int box, const char* what) {
  const double cm = std::round(m * 100);
  if (!std::isfinite(cm) || cm < 1 || cm > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("box ", box, ": ", what, " = ", m, " m lies outside (0, 655.35] m"));
  }
  return static_cast<uint16_t>(cm);
}

}  // namespace

absl::StatusOr<std::string> EncodeBoxMessage(const MessageHeader& header,
                                             const std::vector<Detection>& boxes,
                                             Compression compression) {
  if (boxes.size() > kMaxBoxesPerMessage) {
    return absl::InvalidArgumentError(
        absl::StrCat(boxes.size(), " boxes, at most ", kMaxBoxesPerMessage, " fit a message"));
  }
  std::string body;
  body.reserve(2 + boxes.size() * kBoxBytes);
  ByteWriter w(&body);
  w.U16(static_cast<uint16_t>(boxes.size()));
  for (size_t i = 0; i < boxes.size(); ++i) {
    const Detection& d = boxes[i];
    const Box3D& b = d.box;
    const int n = static_cast<int>(i);
    if (!std::isfinite(b.yaw) || !std::isfinite(d.score)) {
      return absl::InvalidArgumentError(absl::StrCat("box ", n, ": yaw or score is not finite"));
    }
    w.U8(static_cast<uint8_t>(d.cls));
    for (auto [v, what] : {std::pair{b.x, "x"}, {b.y, "y"}, {b.z, "z"}}) {
      absl::StatusOr<int16_t> q = Centimetres(v, n, what);
      if (!q.ok()) return q.status();
      w.I16(*q);
    }
    for (auto [v, what] : {std::pair{b.l, "l"}, {b.w, "w"}, {b.h, "h"}}) {
      absl::StatusOr<uint16_t> q = SizeCentimetres(v, n, what);
      if (!q.ok()) return q.status();
      w.U16(*q);
    }
    const double turns = (WrapAngle(b.yaw) + kPi) / kTwoPi;  // [0, 1)
    w.U16(static_cast<uint16_t>(static_cast<uint32_t>(std::lround(turns * 65536)) & 0xffff));
    w.U16(static_cast<uint16_t>(std::lround(std::clamp(d.score, 0.0, 1.0) * 65535)));
  }
  return FrameMessage(MessageKind::kBoxes, header, body, compression);
}

absl::StatusOr<BoxMessage> DecodeBoxMessage(std::string_view message, const DecodeLimits& limits) {
  absl::StatusOr<UnframedMessage> m = UnframeMessage(message, MessageKind::kBoxes, limits);
  if (!m.ok()) return m.status();
  ByteReader r(m->body);
  if (r.remaining() < 2) return absl::DataLossError("box message body lacks its count");
  const size_t count = r.U16();
  if (r.remaining() != count * kBoxBytes) {
    return absl::DataLossError(absl::StrCat("box message body holds ", r.remaining(),
                                            " bytes after its count, ", count, " boxes take ",
                                            count * kBoxBytes));
  }
  BoxMessage out;
  out.header = m->header;
  out.boxes.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    Detection d;
    const uint8_t cls = r.U8();
    if (cls >= kNumClasses) {
      return absl::InvalidArgumentError(absl::StrCat("box ", i, ": unknown class ", cls));
    }
    d.cls = static_cast<ObjectClass>(cls);
    d.box.x = r.I16() / 100.0;
    d.box.y = r.I16() / 100.0;
    d.box.z = r.I16() / 100.0;
    d.box.l = r.U16() / 100.0;
    d.box.w = r.U16() / 100.0;
    d.box.h = r.U16() / 100.0;
    if (d.box.l == 0 || d.box.w == 0 || d.box.h == 0) {
      return absl::InvalidArgumentError(absl::StrCat("box ", i, ": zero size"));
    }
    d.box.yaw = WrapAngle(r.U16() * kTwoPi / 65536 - kPi);
    d.score = r.U16() / 65535.0;
    out.boxes.push_back(d);
  }
  return out;
}

}  // namespace qv2x::baselines
