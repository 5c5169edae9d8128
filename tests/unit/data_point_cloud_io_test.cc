// Point-cloud files: ASCII and binary PCD (intensity as a field or packed in rgb), V2X-Real
// .bin, and clear errors for broken files.
#include "core/data/point_cloud_io.h"

#include <cstring>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "core/common/file_util.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

std::string Header(const std::string& fields, const std::string& size, const std::string& type,
                   int n, const std::string& data) {
  return absl::StrFormat(
      "# .PCD v0.7\nVERSION 0.7\nFIELDS %s\nSIZE %s\nTYPE %s\nCOUNT %s\nWIDTH %d\nHEIGHT 1\n"
      "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS %d\nDATA %s\n",
      fields, size, type, fields == "x y z" ? "1 1 1" : "1 1 1 1", n, n, data);
}

float FloatFromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

TEST(PcdTest, AsciiWithIntensity) {
  const std::string text = Header("x y z intensity", "4 4 4 4", "F F F F", 3, "ascii") +
                           "1.5 -2 0.25 0.5\n"
                           "nan nan nan 0\n"
                           "-7 8e-1 3 1\n";
  absl::StatusOr<PointCloud> c = ParsePcd(text, "t.pcd");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 2u);  // the NaN hole is dropped
  EXPECT_FLOAT_EQ((*c)[0].x, 1.5f);
  EXPECT_FLOAT_EQ((*c)[0].y, -2.0f);
  EXPECT_FLOAT_EQ((*c)[0].z, 0.25f);
  EXPECT_FLOAT_EQ((*c)[0].intensity, 0.5f);
  EXPECT_FLOAT_EQ((*c)[1].y, 0.8f);
}

TEST(PcdTest, AsciiWithoutIntensityGivesZero) {
  absl::StatusOr<PointCloud> c =
      ParsePcd(Header("x y z", "4 4 4", "F F F", 1, "ascii") + "1 2 3\n", "t.pcd");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FLOAT_EQ((*c)[0].intensity, 0.0f);
}

TEST(PcdTest, IntensityPackedInRgbAscii) {
  // Open3D packs colour as 0x00RRGGBB in a float; OPV2V's intensity is the red channel.
  const float packed = FloatFromBits(0x00CC1122u);
  const std::string text = Header("x y z rgb", "4 4 4 4", "F F F F", 1, "ascii") +
                           absl::StrFormat("1 2 3 %.9g\n", packed);
  absl::StatusOr<PointCloud> c = ParsePcd(text, "t.pcd");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FLOAT_EQ((*c)[0].intensity, 0xCC / 255.0f);
}

TEST(PcdTest, BinaryWithRgbAndMixedTypes) {
  // x y z as float64, rgb as an unsigned int, plus an unrelated 2-byte field.
  std::string text = Header("x y z rgb ring", "8 8 8 4 2", "F F F U U", 2, "binary");
  text.replace(text.find("COUNT 1 1 1 1"), 13, "COUNT 1 1 1 1 1");
  auto put = [&text](const void* p, size_t n) { text.append(static_cast<const char*>(p), n); };
  for (int i = 0; i < 2; ++i) {
    const double xyz[3] = {0.5 + i, -1.25, 2.0};
    const uint32_t rgb = i == 0 ? 0x00FF0000u : 0x00330000u;
    const uint16_t ring = 7;
    put(xyz, sizeof(xyz));
    put(&rgb, 4);
    put(&ring, 2);
  }
  absl::StatusOr<PointCloud> c = ParsePcd(text, "t.pcd");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 2u);
  EXPECT_FLOAT_EQ((*c)[1].x, 1.5f);
  EXPECT_FLOAT_EQ((*c)[1].y, -1.25f);
  EXPECT_FLOAT_EQ((*c)[0].intensity, 1.0f);
  EXPECT_FLOAT_EQ((*c)[1].intensity, 0x33 / 255.0f);
}

TEST(PcdTest, BinaryRoundTripIsExact) {
  const PointCloud in = {{1.1f, -2.2f, 3.3f, 0.44f}, {-1e-7f, 5e4f, -0.0f, 1.0f}};
  absl::StatusOr<PointCloud> out = ParsePcd(EncodePcdBinary(in), "t.pcd");
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), in.size());
  EXPECT_EQ(std::memcmp(out->data(), in.data(), in.size() * sizeof(Point)), 0);
  EXPECT_TRUE(ParsePcd(EncodePcdBinary({}), "empty.pcd")->empty());
}

TEST(PcdTest, BrokenFilesAreClearErrors) {
  EXPECT_EQ(ParsePcd("hello\n", "a.pcd").status().code(), absl::StatusCode::kInvalidArgument);
  const std::string truncated = EncodePcdBinary({{1, 2, 3, 4}, {5, 6, 7, 8}});
  absl::Status st = ParsePcd(truncated.substr(0, truncated.size() - 5), "b.pcd").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("b.pcd"), std::string::npos);
  EXPECT_EQ(
      ParsePcd(Header("x y z", "4 4 4", "F F F", 1, "binary_compressed"), "c.pcd").status().code(),
      absl::StatusCode::kUnimplemented);
  EXPECT_EQ(ParsePcd(Header("a b c", "4 4 4", "F F F", 0, "ascii"), "d.pcd").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ParsePcd(Header("x y z", "4 4 4", "F F F", 2, "ascii") + "1 2 3\n", "e.pcd").status().code(),
      absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParsePcd(Header("x y z", "3 4 4", "F F F", 0, "ascii"), "f.pcd").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BinTest, ReadsFloat32Rows) {
  const std::string path = ::testing::TempDir() + "/qv2x_cloud.bin";
  const float rows[8] = {1, 2, 3, 0.5f, -4, -5, -6, 0.25f};
  ASSERT_TRUE(WriteFileAtomic(path, std::string(reinterpret_cast<const char*>(rows), 32)).ok());
  absl::StatusOr<PointCloud> c = ReadPointCloud(path);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 2u);
  EXPECT_FLOAT_EQ((*c)[1].x, -4);
  EXPECT_FLOAT_EQ((*c)[1].intensity, 0.25f);
  ASSERT_TRUE(WriteFileAtomic(path, std::string(20, '\0')).ok());
  EXPECT_EQ(ReadBin(path).status().code(), absl::StatusCode::kDataLoss);
  std::filesystem::remove(path);
  EXPECT_EQ(ReadPointCloud("cloud.ply").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadPointCloud("/nonexistent/x.pcd").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace qv2x
