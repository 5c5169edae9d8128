// VLP-16 packets decode to the points the manual's geometry gives; MRPT rawlogs (plain and
// gzip) yield their packets and pose, and broken ones clear errors; the real VLP-16 sweep
// Debian's mrpt-common ships decodes whole.
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/data/mrpt_rawlog.h"
#include "core/data/velodyne_packets.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

constexpr double kDeg = 3.14159265358979323846 / 180.0;

// A data packet with every return empty; blocks' azimuths step by 0.4°.
std::string Packet(uint16_t first_azimuth) {
  std::string p(kVlp16PacketBytes, '\0');
  for (int b = 0; b < 12; ++b) {
    p[b * 100] = '\xFF';
    p[b * 100 + 1] = '\xEE';
    const uint16_t az = (first_azimuth + 40 * b) % 36000;
    std::memcpy(&p[b * 100 + 2], &az, 2);
  }
  p[1204] = 0x37;  // strongest return
  p[1205] = 0x22;  // VLP-16
  return p;
}

void SetReturn(std::string* p, int block, int seq, int laser, uint16_t raw, uint8_t refl) {
  const int at = block * 100 + 4 + (seq * 16 + laser) * 3;
  std::memcpy(&(*p)[at], &raw, 2);
  (*p)[at + 2] = static_cast<char>(refl);
}

TEST(Vlp16Test, ReturnsLandWhereTheManualsGeometryPutsThem) {
  EXPECT_EQ(Vlp16LaserElevationDeg(0), -15);
  EXPECT_EQ(Vlp16LaserElevationDeg(1), 1);
  EXPECT_EQ(Vlp16LaserElevationDeg(14), -1);
  EXPECT_EQ(Vlp16LaserElevationDeg(15), 15);
  std::string p = Packet(9000);         // block 0 at 90°: the sensor's right
  SetReturn(&p, 0, 0, 1, 5000, 255);    // 10 m, +1°
  SetReturn(&p, 0, 1, 0, 2500, 51);     // 5 m, -15°, halfway to block 1 (90.2°)
  SetReturn(&p, 11, 0, 15, 0, 99);      // no echo: dropped
  const std::string q = Packet(35980);  // through 0°
  std::string q2 = q;
  SetReturn(&q2, 0, 0, 2, 1000, 0);  // 2 m at 359.8°, -13°
  absl::StatusOr<PointCloud> c = DecodeVlp16Packets({p, q2}, "t");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 3u);
  const Point& a = (*c)[0];
  EXPECT_NEAR(a.x, 0, 1e-5);
  EXPECT_NEAR(a.y, -10 * std::cos(1 * kDeg), 1e-5);  // right of the sensor: negative y
  EXPECT_NEAR(a.z, 10 * std::sin(1 * kDeg), 1e-5);
  EXPECT_FLOAT_EQ(a.intensity, 1.0f);
  const Point& b = (*c)[1];
  const double h = 5 * std::cos(15 * kDeg);
  EXPECT_NEAR(b.x, h * std::cos(90.2 * kDeg), 1e-5);
  EXPECT_NEAR(b.y, -h * std::sin(90.2 * kDeg), 1e-5);
  EXPECT_NEAR(b.z, -5 * std::sin(15 * kDeg), 1e-5);
  EXPECT_FLOAT_EQ(b.intensity, 0.2f);
  const Point& d = (*c)[2];  // 359.8°: just left of straight ahead
  EXPECT_NEAR(d.x, 2 * std::cos(13 * kDeg) * std::cos(359.8 * kDeg), 1e-5);
  EXPECT_GT(d.y, 0);
  // The range limit drops far returns.
  EXPECT_EQ(DecodeVlp16Packets({p}, "t", 8.0f)->size(), 1u);
}

TEST(Vlp16Test, PacketsThatAreNotVlp16DataAreRefused) {
  std::string p = Packet(0);
  absl::Status st = DecodeVlp16Packets({p.substr(0, 1000)}, "cap.bin").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("cap.bin: packet 0 has 1000 bytes"), std::string::npos) << st;
  std::string flag = p;
  flag[300] = 0;
  st = DecodeVlp16Packets({p, flag}, "cap.bin").status();
  EXPECT_NE(st.message().find("packet 1 block 3 does not start with the flag"), std::string::npos)
      << st;
  std::string az = p;
  const uint16_t bad = 36000;
  std::memcpy(&az[102], &bad, 2);
  EXPECT_EQ(DecodeVlp16Packets({az}, "t").status().code(), absl::StatusCode::kInvalidArgument);
}

// A rawlog as MRPT serializes a CObservationVelodyneScan (version 2) with `n` packets.
std::string Rawlog(const std::vector<std::string>& packets,
                   const std::string& cls = "CObservationVelodyneScan", uint8_t version = 2) {
  std::string s;
  auto put = [&s](const auto& v) { s.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  s.push_back(static_cast<char>(0x80 | cls.size()));
  s += cls;
  s.push_back(static_cast<char>(version));
  put(uint64_t{133000000000000000});
  const std::string label = "Velodyne1_SCAN";
  put(static_cast<uint32_t>(label.size()));
  s += label;
  put(1.0);
  put(120.0);
  s.push_back(static_cast<char>(0x87));
  s += "CPose3D";
  s.push_back(2);
  // x y z, then a quaternion turning the sensor 90° to the left (about z).
  for (double v : {1.5, -0.25, 1.9, std::sqrt(0.5), 0.0, 0.0, std::sqrt(0.5)}) put(v);
  s.push_back(static_cast<char>(0x88));
  put(static_cast<uint32_t>(packets.size()));
  for (const std::string& p : packets) s += p;
  s += std::string(64, '\x10');  // what MRPT writes after the packets is not read
  return s;
}

std::string Gzip(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = in.size();
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = out.size();
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

TEST(MrptRawlogTest, ReadsThePacketsAndThePosePlainOrGzip) {
  std::string p = Packet(0);
  SetReturn(&p, 0, 0, 1, 5000, 10);
  const std::string raw = Rawlog({p, Packet(480)});
  for (const std::string& bytes : {raw, Gzip(raw)}) {
    absl::StatusOr<MrptVelodyneScan> s = ParseMrptVelodyneScan(bytes, "t.rawlog");
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->label, "Velodyne1_SCAN");
    EXPECT_EQ(s->max_range_m, 120.0);
    ASSERT_EQ(s->packets.size(), 2u);
    EXPECT_EQ(s->packets[0], p);
    const Pose pose = s->SensorPose();
    EXPECT_NEAR(pose.x, 1.5, 1e-12);
    EXPECT_NEAR(pose.z, 1.9, 1e-12);
    EXPECT_NEAR(pose.yaw, 90, 1e-9);
    EXPECT_NEAR(pose.roll, 0, 1e-9);
    EXPECT_NEAR(pose.pitch, 0, 1e-9);
    absl::StatusOr<PointCloud> c = MrptScanPoints(*s, "t.rawlog");
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->size(), 1u);
  }
}

TEST(MrptRawlogTest, BrokenRawlogsAreClearErrors) {
  const std::string raw = Rawlog({Packet(0)});
  auto code = [](const std::string& b) { return ParseMrptVelodyneScan(b, "r").status().code(); };
  EXPECT_EQ(code(raw.substr(0, raw.size() - 64 - 100)), absl::StatusCode::kDataLoss);
  EXPECT_EQ(code(raw.substr(0, 30)), absl::StatusCode::kDataLoss);
  EXPECT_EQ(code(Rawlog({}, "CObservation2DRangeScan")), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Rawlog({}, "CObservationVelodyneScan", 1)), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(code("plain text"), absl::StatusCode::kInvalidArgument);
  const std::string gz = Gzip(raw);
  EXPECT_EQ(code(gz.substr(0, gz.size() / 2)), absl::StatusCode::kDataLoss);
  std::string damaged = gz;
  damaged[gz.size() / 2] ^= 0x55;
  EXPECT_NE(code(damaged), absl::StatusCode::kOk);
  // No returns at all: nothing to encode.
  absl::StatusOr<MrptVelodyneScan> empty = ParseMrptVelodyneScan(raw, "e.rawlog");
  ASSERT_TRUE(empty.ok());
  absl::Status st = MrptScanPoints(*empty, "e.rawlog").status();
  EXPECT_NE(st.message().find("e.rawlog: the scan has no returns"), std::string::npos) << st;
  EXPECT_EQ(ReadMrptVelodyneScan("/nonexistent.rawlog").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(MrptRawlogTest, DebiansVlp16SweepDecodesWhole) {
  const char* path = "/usr/share/mrpt/datasets/test_velodyne_VLP16.rawlog";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "mrpt-common is not installed";
  absl::StatusOr<MrptVelodyneScan> s = ReadMrptVelodyneScan(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->label, "Velodyne1_SCAN");
  ASSERT_EQ(s->packets.size(), 75u);  // one rotation: 75 x 12 blocks x 0.4°
  absl::StatusOr<PointCloud> c = MrptScanPoints(*s, path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->size(), 22591u);  // every return with an echo, all within 120 m
  // A street-level sweep: most returns within 30 m, the ground well below the sensor.
  int near = 0, below = 0;
  for (const Point& p : *c) {
    near += std::hypot(p.x, p.y) < 30;
    below += p.z < -1.0f;
  }
  EXPECT_GT(near, 0.8 * c->size());
  EXPECT_GT(below, 0.05 * c->size());
}

}  // namespace
}  // namespace qv2x
