// Point-cloud files: ascii, binary and binary_compressed PCD (intensity as a field or packed
// in rgb), V2X-Real .bin, and clear errors for broken files.
#include "core/data/point_cloud_io.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "core/common/file_util.h"
#include "gtest/gtest.h"
#include "lzf.h"

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
  absl::StatusOr<PointCloud> out = ParsePcd(EncodePcd(in), "t.pcd");
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), in.size());
  EXPECT_EQ(std::memcmp(out->data(), in.data(), in.size() * sizeof(Point)), 0);
  EXPECT_TRUE(ParsePcd(EncodePcd({}), "empty.pcd")->empty());
}

// A sweep-like cloud: rings of points, so that LZF finds repeats as in real data.
PointCloud Rings(int n) {
  PointCloud c;
  for (int i = 0; i < n; ++i) {
    const float a = 0.01f * static_cast<float>(i);
    c.push_back({10.0f * std::cos(a), 10.0f * std::sin(a), -1.5f + 0.125f * (i % 16),
                 static_cast<float>(i % 7) / 7.0f});
  }
  return c;
}

TEST(PcdTest, EveryLayoutRoundTripsExactly) {
  const PointCloud in = Rings(3000);
  for (PcdData layout : {PcdData::kAscii, PcdData::kBinary, PcdData::kBinaryCompressed}) {
    const std::string bytes = EncodePcd(in, layout);
    absl::StatusOr<PointCloud> out = ParsePcd(bytes, "t.pcd");
    ASSERT_TRUE(out.ok()) << static_cast<int>(layout) << ": " << out.status();
    ASSERT_EQ(out->size(), in.size());
    EXPECT_EQ(std::memcmp(out->data(), in.data(), in.size() * sizeof(Point)), 0)
        << static_cast<int>(layout);
    if (layout == PcdData::kBinaryCompressed) {
      EXPECT_LT(bytes.size(), EncodePcd(in, PcdData::kBinary).size());
    }
    EXPECT_TRUE(ParsePcd(EncodePcd({}, layout), "empty.pcd")->empty());
  }
  EXPECT_EQ(*ParsePcdData("binary_compressed"), PcdData::kBinaryCompressed);
  EXPECT_EQ(ParsePcdData("lzf").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PcdTest, BinaryCompressedStoresFieldsAsColumns) {
  // As PCL writes it: x y z float32, intensity uint8, the data field by field, LZF-packed.
  const int n = 3;
  const float xyz[3][3] = {{1, 2, 3}, {-4, 5.5f, 6}, {7, 8, -9.25f}};
  const uint8_t intensity[3] = {0, 128, 255};
  std::string columns;
  for (int f = 0; f < 3; ++f) {
    for (int i = 0; i < n; ++i) columns.append(reinterpret_cast<const char*>(&xyz[i][f]), 4);
  }
  columns.append(reinterpret_cast<const char*>(intensity), 3);
  std::string packed(columns.size() * 2 + 64, '\0');
  const unsigned size = lzf_compress(columns.data(), columns.size(), packed.data(), packed.size());
  ASSERT_GT(size, 0u);
  const uint32_t sizes[2] = {size, static_cast<uint32_t>(columns.size())};
  std::string text = Header("x y z intensity", "4 4 4 1", "F F F U", n, "binary_compressed");
  text.append(reinterpret_cast<const char*>(sizes), 8);
  text.append(packed.data(), size);
  absl::StatusOr<PointCloud> c = ParsePcd(text, "t.pcd");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 3u);
  EXPECT_FLOAT_EQ((*c)[1].x, -4);
  EXPECT_FLOAT_EQ((*c)[1].y, 5.5f);
  EXPECT_FLOAT_EQ((*c)[2].z, -9.25f);
  EXPECT_FLOAT_EQ((*c)[1].intensity, 128);

  // Broken: no size words, a size that disagrees with POINTS, cut or damaged LZF data, and a
  // claim no LZF data of that length can hold.
  const std::string head = text.substr(0, text.size() - size - 8);
  auto with = [&](uint32_t a, uint32_t b, const std::string& data) {
    const uint32_t s[2] = {a, b};
    return head + std::string(reinterpret_cast<const char*>(s), 8) + data;
  };
  const std::string lzf(packed.data(), size);
  EXPECT_EQ(ParsePcd(head + "abc", "a.pcd").status().code(), absl::StatusCode::kDataLoss);
  absl::Status st = ParsePcd(with(size, sizes[1] + 4, lzf), "b.pcd").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("b.pcd: binary_compressed data decompresses to 43 bytes"),
            std::string::npos)
      << st;
  EXPECT_EQ(ParsePcd(with(size, sizes[1], lzf.substr(0, size - 2)), "c.pcd").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParsePcd(with(size - 2, sizes[1], lzf.substr(0, size - 2)), "d.pcd").status().code(),
            absl::StatusCode::kDataLoss);
  std::string huge = Header("x y z", "4 4 4", "F F F", 100000000, "binary_compressed");
  const uint32_t claim[2] = {4, 1200000000u};
  huge.append(reinterpret_cast<const char*>(claim), 8).append("abcd");
  st = ParsePcd(huge, "e.pcd").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("cannot hold"), std::string::npos) << st;
}

TEST(PcdTest, BrokenFilesAreClearErrors) {
  EXPECT_EQ(ParsePcd("hello\n", "a.pcd").status().code(), absl::StatusCode::kInvalidArgument);
  const std::string truncated = EncodePcd({{1, 2, 3, 4}, {5, 6, 7, 8}});
  absl::Status st = ParsePcd(truncated.substr(0, truncated.size() - 5), "b.pcd").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("b.pcd"), std::string::npos);
  EXPECT_EQ(ParsePcd(Header("x y z", "4 4 4", "F F F", 1, "binary_lzma"), "c.pcd").status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(ParsePcd(Header("a b c", "4 4 4", "F F F", 0, "ascii"), "d.pcd").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ParsePcd(Header("x y z", "4 4 4", "F F F", 2, "ascii") + "1 2 3\n", "e.pcd").status().code(),
      absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParsePcd(Header("x y z", "3 4 4", "F F F", 0, "ascii"), "f.pcd").status().code(),
            absl::StatusCode::kInvalidArgument);
  // Sizes that would overflow POINTS x record bytes: refused before any arithmetic on them.
  for (const std::string& text :
       {Header("x y z", "4 4 4", "F F F", 0, "binary")
            .replace(Header("x y z", "4 4 4", "F F F", 0, "binary").find("POINTS 0"), 8,
                     "POINTS 1152921504606846976"),
        Header("x y z", "4 4 4", "F F F", 1, "binary")
            .replace(Header("x y z", "4 4 4", "F F F", 1, "binary").find("COUNT 1 1 1"), 11,
                     "COUNT 1 1 2147483647")}) {
    absl::Status big = ParsePcd(text + std::string(64, '\0'), "g.pcd").status();
    EXPECT_EQ(big.code(), absl::StatusCode::kInvalidArgument) << big;
  }
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
