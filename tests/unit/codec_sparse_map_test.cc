// Sparse index maps: only the masked cells travel; the receiver gets kUnsentIndex elsewhere.
#include <gtest/gtest.h>

#include <random>

#include "core/codec/cell_mask.h"
#include "core/codec/index_codec.h"

namespace qv2x::codec {
namespace {

std::vector<int32_t> Ramp(const IndexGrid& g) {
  std::vector<int32_t> v(g.cells());
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(i % g.dict_size);
  return v;
}

// What the receiver should see: the sender's index where the mask is set, else unsent.
std::vector<int32_t> Expected(const std::vector<int32_t>& v, const IndexGrid& g,
                              const std::vector<uint8_t>& mask) {
  std::vector<int32_t> out(v.size(), kUnsentIndex);
  const int64_t plane = g.height * g.width;
  for (int64_t l = 0; l < g.levels; ++l) {
    for (int64_t c = 0; c < plane; ++c) {
      if (mask[c]) out[l * plane + c] = v[l * plane + c];
    }
  }
  return out;
}

TEST(CellMaskTest, PacksLsbFirstAndCounts) {
  EXPECT_EQ(PackMask({1, 0, 0, 0, 0, 0, 0, 1, 1}), std::string("\x81\x01", 2));
  std::vector<uint8_t> back;
  int64_t sent = 0;
  ASSERT_TRUE(UnpackMask(std::string("\x81\x01", 2), 9, &back, &sent).ok());
  EXPECT_EQ(back, (std::vector<uint8_t>{1, 0, 0, 0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(sent, 3);
  // Padding bits beyond the 9th cell must be zero; the length must match.
  EXPECT_EQ(UnpackMask(std::string("\x81\x03", 2), 9, &back, &sent).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(UnpackMask(std::string("\x81", 1), 9, &back, &sent).code(),
            absl::StatusCode::kDataLoss);
}

TEST(SparseMapTest, BitpackKnownAnswer) {
  // 1 level of 1 x 4 cells, 4 codes (2 bits); cells 1 and 3 sent: mask 0b1010, then 3 | 1 << 2.
  const IndexGrid g{1, 1, 4, 4};
  const std::vector<uint8_t> mask{0, 1, 0, 1};
  auto enc = EncodeIndices({2, 3, 0, 1}, g, {IndexEncoding::kBitpack}, &mask);
  ASSERT_TRUE(enc.ok()) << enc.status();
  EXPECT_TRUE(enc->sparse);
  EXPECT_EQ(enc->sent_cells, 2u);
  EXPECT_EQ(enc->payload, std::string("\x0a\x07", 2));
  std::vector<int32_t> out;
  ASSERT_TRUE(DecodeIndices(*enc, g, {}, &out).ok());
  EXPECT_EQ(out, (std::vector<int32_t>{kUnsentIndex, 3, kUnsentIndex, 1}));
}

TEST(SparseMapTest, RoundTripsEveryDensityBothEncodings) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  for (double density : {0.0, 0.05, 0.3, 1.0}) {
    for (int64_t dict : {2, 128, 300}) {
      const IndexGrid g{3, 13, 21, dict};
      const auto v = Ramp(g);
      std::vector<uint8_t> mask(g.height * g.width);
      for (auto& m : mask) m = u(rng) < density;
      for (IndexEncoding e : {IndexEncoding::kBitpack, IndexEncoding::kZstd}) {
        auto enc = EncodeIndices(v, g, {e}, &mask);
        ASSERT_TRUE(enc.ok()) << enc.status();
        std::vector<int32_t> out;
        ASSERT_TRUE(DecodeIndices(*enc, g, {}, &out).ok())
            << EncodingName(e) << " density " << density;
        EXPECT_EQ(out, Expected(v, g, mask));
      }
    }
  }
}

TEST(SparseMapTest, FewCellsCostFewBytes) {
  const IndexGrid g{1, 100, 352, 128};
  std::mt19937 rng(3);
  std::vector<int32_t> v(g.cells());
  for (auto& x : v) x = static_cast<int32_t>(rng() % 128);
  std::vector<uint8_t> mask(g.cells(), 0);
  for (int64_t c = 0; c < g.cells(); c += 10) mask[c] = 1;  // a tenth of the cells
  auto dense = EncodeIndices(v, g, {IndexEncoding::kBitpack});
  auto sparse = EncodeIndices(v, g, {IndexEncoding::kBitpack}, &mask);
  ASSERT_TRUE(dense.ok() && sparse.ok());
  // 3,520 cells at 7 bits plus a 4,400-byte mask.
  EXPECT_EQ(sparse->payload.size(), 4400u + 3080u);
  EXPECT_LT(sparse->payload.size(), dense->payload.size() / 4);
}

TEST(SparseMapTest, RefusesInconsistentMaps) {
  const IndexGrid g{2, 4, 4, 16};
  const auto v = Ramp(g);
  std::vector<uint8_t> mask(16, 0);
  mask[3] = mask[9] = 1;
  std::vector<int32_t> out;
  for (IndexEncoding e : {IndexEncoding::kBitpack, IndexEncoding::kZstd}) {
    auto enc = EncodeIndices(v, g, {e}, &mask);
    ASSERT_TRUE(enc.ok());
    EncodedIndices bad = *enc;
    bad.sent_cells = 3;  // the mask sets 2
    EXPECT_FALSE(DecodeIndices(bad, g, {}, &out).ok()) << EncodingName(e);
    bad.sent_cells = 17;
    EXPECT_EQ(DecodeIndices(bad, g, {}, &out).code(), absl::StatusCode::kInvalidArgument);
    bad = *enc;
    bad.sparse = false;  // a dense map does not carry sent_cells
    EXPECT_EQ(DecodeIndices(bad, g, {}, &out).code(), absl::StatusCode::kInvalidArgument);
  }
  // A mask bit flipped in a bit-packed payload: the count no longer matches.
  auto enc = EncodeIndices(v, g, {IndexEncoding::kBitpack}, &mask);
  enc->payload[0] = static_cast<char>(enc->payload[0] ^ 0x01);
  absl::Status st = DecodeIndices(*enc, g, {}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("cell mask sets 3 cells, the map says 2"), std::string::npos) << st;
  // A mask of the wrong size is the sender's error.
  std::vector<uint8_t> short_mask(15, 1);
  EXPECT_EQ(EncodeIndices(v, g, {IndexEncoding::kBitpack}, &short_mask).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SparseMapTest, EntropyIgnoresUnsentCells) {
  EXPECT_DOUBLE_EQ(IndexEntropyBits({kUnsentIndex, 0, 1, kUnsentIndex}, 2), 1.0);
  EXPECT_DOUBLE_EQ(IndexEntropyBits({kUnsentIndex, kUnsentIndex}, 2), 0.0);
}

}  // namespace
}  // namespace qv2x::codec
