#include "core/baselines/message_frame.h"

#include <zstd.h>

#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace qv2x::baselines {

void ByteWriter::U16(uint16_t v) {
  U8(static_cast<uint8_t>(v));
  U8(static_cast<uint8_t>(v >> 8));
}
void ByteWriter::U32(uint32_t v) {
  U16(static_cast<uint16_t>(v));
  U16(static_cast<uint16_t>(v >> 16));
}
void ByteWriter::U64(uint64_t v) {
  U32(static_cast<uint32_t>(v));
  U32(static_cast<uint32_t>(v >> 32));
}
void ByteWriter::F32(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  U32(bits);
}
void ByteWriter::F64(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  U64(bits);
}

uint16_t ByteReader::U16() {
  const uint16_t lo = U8();
  return static_cast<uint16_t>(lo | (static_cast<uint16_t>(U8()) << 8));
}
uint32_t ByteReader::U32() {
  const uint32_t lo = U16();
  return lo | (static_cast<uint32_t>(U16()) << 16);
}
uint64_t ByteReader::U64() {
  const uint64_t lo = U32();
  return lo | (static_cast<uint64_t>(U32()) << 32);
}
float ByteReader::F32() {
  const uint32_t bits = U32();
  float v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}
double ByteReader::F64() {
  const uint64_t bits = U64();
  double v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

absl::StatusOr<std::string> FrameMessage(MessageKind kind, const MessageHeader& header,
                                         std::string_view body, Compression compression) {
  std::string out;
  ByteWriter w(&out);
  w.U8(kMessageVersion);
  w.U8(static_cast<uint8_t>(kind));
  w.U8(static_cast<uint8_t>(compression));
  w.U32(static_cast<uint32_t>(header.agent_id));
  w.U64(header.frame_id);
  for (double v : header.lidar_pose.ToArray()) w.F64(v);
  if (compression == Compression::kNone) {
    out.append(body);
    return out;
  }
  const size_t at = out.size();
  out.resize(at + ZSTD_compressBound(body.size()));
  const size_t n = ZSTD_compress(out.data() + at, out.size() - at, body.data(), body.size(), 3);
  if (ZSTD_isError(n)) return absl::InternalError(absl::StrCat("zstd: ", ZSTD_getErrorName(n)));
  out.resize(at + n);
  return out;
}

absl::StatusOr<UnframedMessage> UnframeMessage(std::string_view message, MessageKind kind,
                                               const DecodeLimits& limits) {
  if (message.size() < kMessageHeaderBytes) {
    return absl::DataLossError(absl::StrCat("message of ", message.size(),
                                            " bytes is shorter than its ", kMessageHeaderBytes,
                                            "-byte header"));
  }
  ByteReader r(message);
  const uint8_t version = r.U8(), got_kind = r.U8(), compression = r.U8();
  if (version != kMessageVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("message version ", version, ", expected ", kMessageVersion));
  }
  if (got_kind != static_cast<uint8_t>(kind)) {
    return absl::InvalidArgumentError(
        absl::StrCat("message kind ", got_kind, ", expected ", static_cast<int>(kind)));
  }
  if (compression > static_cast<uint8_t>(Compression::kZstd)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown compression ", compression));
  }
  UnframedMessage out;
  out.compression = static_cast<Compression>(compression);
  out.header.agent_id = static_cast<int32_t>(r.U32());
  out.header.frame_id = r.U64();
  std::array<double, 6> pose;
  for (double& v : pose) v = r.F64();
  out.header.lidar_pose = Pose::FromArray(pose);
  const std::string_view body = message.substr(kMessageHeaderBytes);
  if (out.compression == Compression::kNone) {
    if (body.size() > limits.max_body_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "body of ", body.size(), " bytes exceeds the limit of ", limits.max_body_bytes));
    }
    out.body.assign(body);
    return out;
  }
  // The frame's own size claim is checked before anything is allocated for it, and the
  // body must be exactly that one frame.
  const unsigned long long framed = ZSTD_getFrameContentSize(body.data(), body.size());
  if (framed == ZSTD_CONTENTSIZE_ERROR) return absl::DataLossError("body is not a zstd frame");
  if (framed == ZSTD_CONTENTSIZE_UNKNOWN) {
    return absl::DataLossError("zstd frame does not state its content size");
  }
  if (framed > limits.max_body_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "zstd frame claims ", framed, " bytes, over the limit of ", limits.max_body_bytes));
  }
  const size_t frame_bytes = ZSTD_findFrameCompressedSize(body.data(), body.size());
  if (ZSTD_isError(frame_bytes)) {
    return absl::DataLossError(absl::StrCat("zstd: ", ZSTD_getErrorName(frame_bytes)));
  }
  if (frame_bytes != body.size()) {
    return absl::DataLossError(
        absl::StrCat(body.size() - frame_bytes, " bytes after the compressed frame"));
  }
  out.body.resize(framed);
  const size_t got = ZSTD_decompress(out.body.data(), out.body.size(), body.data(), body.size());
  if (ZSTD_isError(got)) return absl::DataLossError(absl::StrCat("zstd: ", ZSTD_getErrorName(got)));
  if (got != framed) {
    return absl::DataLossError(absl::StrCat("zstd frame held ", got, " bytes, claimed ", framed));
  }
  return out;
}

}  // namespace qv2x::baselines
