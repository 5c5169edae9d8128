#include "core/data/mrpt_rawlog.h"

#include <zlib.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/data/velodyne_packets.h"

namespace qv2x {
namespace {

// Well above any single sweep (a VLP-16 rotation is ~90 KB of packets).
constexpr size_t kMaxRawlogBytes = 256u << 20;

absl::StatusOr<std::string> Gunzip(const std::string& in, const std::string& origin) {
  z_stream s{};
  if (inflateInit2(&s, 15 + 32) != Z_OK) return absl::InternalError("zlib: inflateInit2 failed");
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  std::string out;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (out.size() >= kMaxRawlogBytes) {
      inflateEnd(&s);
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": decompresses to more than ", kMaxRawlogBytes, " bytes"));
    }
    const size_t have = out.size();
    out.resize(have + (1u << 16));
    s.next_out = reinterpret_cast<Bytef*>(out.data() + have);
    s.avail_out = 1u << 16;
    rc = inflate(&s, Z_NO_FLUSH);
    out.resize(out.size() - s.avail_out);
    if (rc == Z_BUF_ERROR && s.avail_in == 0) break;  // input ended before the stream did
  }
  inflateEnd(&s);
  if (rc != Z_STREAM_END) {
    return absl::DataLossError(
        absl::StrCat(origin, ": the gzip data is ", rc == Z_BUF_ERROR ? "truncated" : "corrupt"));
  }
  return out;
}

// Reads the serialized fields in order, each check naming what was expected.
class Reader {
 public:
  Reader(const std::string& bytes, const std::string& origin) : b_(bytes), origin_(origin) {}

  absl::Status Need(size_t n, absl::string_view what) const {
    if (b_.size() - pos_ < n) {
      return absl::DataLossError(absl::StrCat(origin_, ": truncated in ", what, " (byte ", pos_,
                                              ", ", n, " needed, ", b_.size() - pos_, " left)"));
    }
    return absl::OkStatus();
  }
  template <typename T>
  absl::StatusOr<T> Get(absl::string_view what) {
    QV2X_RETURN_IF_ERROR(Need(sizeof(T), what));
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  absl::StatusOr<absl::string_view> Bytes(size_t n, absl::string_view what) {
    QV2X_RETURN_IF_ERROR(Need(n, what));
    absl::string_view v(b_.data() + pos_, n);
    pos_ += n;
    return v;
  }
  // An object header: 0x80 | name length, the class name, the serialization version.
  absl::Status Header(absl::string_view cls, uint8_t version) {
    QV2X_ASSIGN_OR_RETURN(uint8_t tag, Get<uint8_t>("a class header"));
    if ((tag & 0x80) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin_, ": byte ", pos_ - 1, " is not an MRPT object header"));
    }
    QV2X_ASSIGN_OR_RETURN(absl::string_view name, Bytes(tag & 0x7F, "a class name"));
    if (name != cls) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin_, ": holds a ", name, " where a ", cls, " was expected"));
    }
    QV2X_ASSIGN_OR_RETURN(uint8_t v, Get<uint8_t>("a class version"));
    if (v != version) {
      return absl::UnimplementedError(absl::StrCat(origin_, ": ", cls, " serialization version ", v,
                                                   " (version ", version, " is read)"));
    }
    return absl::OkStatus();
  }

 private:
  const std::string& b_;
  const std::string& origin_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<MrptVelodyneScan> ParseMrptVelodyneScan(const std::string& bytes,
                                                       const std::string& origin) {
  MrptVelodyneScan scan;
  std::string unpacked;
  const bool gzip = bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1F &&
                    static_cast<unsigned char>(bytes[1]) == 0x8B;
  if (gzip) {
    QV2X_ASSIGN_OR_RETURN(unpacked, Gunzip(bytes, origin));
  }
  Reader r(gzip ? unpacked : bytes, origin);
  QV2X_RETURN_IF_ERROR(r.Header("CObservationVelodyneScan", 2));
  QV2X_ASSIGN_OR_RETURN(scan.timestamp, r.Get<uint64_t>("the timestamp"));
  QV2X_ASSIGN_OR_RETURN(uint32_t label_len, r.Get<uint32_t>("the sensor label"));
  QV2X_ASSIGN_OR_RETURN(absl::string_view label, r.Bytes(label_len, "the sensor label"));
  scan.label = std::string(label);
  QV2X_ASSIGN_OR_RETURN(scan.min_range_m, r.Get<double>("the minimum range"));
  QV2X_ASSIGN_OR_RETURN(scan.max_range_m, r.Get<double>("the maximum range"));
  QV2X_RETURN_IF_ERROR(r.Header("CPose3D", 2));
  for (double* v : {&scan.position[0], &scan.position[1], &scan.position[2], &scan.quaternion[0],
                    &scan.quaternion[1], &scan.quaternion[2], &scan.quaternion[3]}) {
    QV2X_ASSIGN_OR_RETURN(*v, r.Get<double>("the sensor pose"));
  }
  QV2X_ASSIGN_OR_RETURN(uint8_t end, r.Get<uint8_t>("the sensor pose"));
  if (end != 0x88) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": the sensor pose does not end with MRPT's end-of-object byte"));
  }
  QV2X_ASSIGN_OR_RETURN(uint32_t n, r.Get<uint32_t>("the packet count"));
  QV2X_RETURN_IF_ERROR(
      r.Need(static_cast<size_t>(n) * kVlp16PacketBytes, absl::StrCat("the ", n, " packets")));
  for (uint32_t i = 0; i < n; ++i) {
    QV2X_ASSIGN_OR_RETURN(absl::string_view p, r.Bytes(kVlp16PacketBytes, "a packet"));
    scan.packets.emplace_back(p);
  }
  return scan;
}

Pose MrptVelodyneScan::SensorPose() const {
  const double w = quaternion[0], x = quaternion[1], y = quaternion[2], z = quaternion[3];
  Mat4 t = Mat4::Identity();
  t(0, 0) = 1 - 2 * (y * y + z * z);
  t(0, 1) = 2 * (x * y - w * z);
  t(0, 2) = 2 * (x * z + w * y);
  t(1, 0) = 2 * (x * y + w * z);
  t(1, 1) = 1 - 2 * (x * x + z * z);
  t(1, 2) = 2 * (y * z - w * x);
  t(2, 0) = 2 * (x * z - w * y);
  t(2, 1) = 2 * (y * z + w * x);
  t(2, 2) = 1 - 2 * (x * x + y * y);
  for (int i = 0; i < 3; ++i) t(i, 3) = position[i];
  return MatrixToPose(t);
}

absl::StatusOr<MrptVelodyneScan> ReadMrptVelodyneScan(const std::string& path) {
  QV2X_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseMrptVelodyneScan(bytes, path);
}

absl::StatusOr<PointCloud> MrptScanPoints(const MrptVelodyneScan& scan, const std::string& origin) {
  const float max_range = scan.max_range_m > 0 ? static_cast<float>(scan.max_range_m) : 130.0f;
  const std::vector<absl::string_view> packets(scan.packets.begin(), scan.packets.end());
  QV2X_ASSIGN_OR_RETURN(PointCloud cloud, DecodeVlp16Packets(packets, origin, max_range));
  if (cloud.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": the scan has no returns"));
  }
  return cloud;
}

}  // namespace qv2x
