#include "core/codec/index_codec.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <random>

namespace qv2x::codec {
namespace {

std::vector<int32_t> RandomIndices(const IndexGrid& g, std::mt19937& rng, double skew) {
  // Skewed like real index maps: most cells take one of a few codes.
  std::uniform_int_distribution<int32_t> any(0, static_cast<int32_t>(g.dict_size - 1));
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<int32_t> v(g.cells());
  for (auto& x : v) x = u(rng) < skew ? static_cast<int32_t>(any(rng) % 3) : any(rng);
  return v;
}

TEST(IndexCodecTest, BitpackKnownAnswer) {
  const IndexGrid g{1, 1, 3, 128};
  auto enc = EncodeIndices({1, 2, 127}, g, {IndexEncoding::kBitpack});
  ASSERT_TRUE(enc.ok()) << enc.status();
  EXPECT_EQ(enc->bits_per_index, 7);
  // 1 | 2 << 7 | 127 << 14 = 0x1FC101, least significant byte first.
  EXPECT_EQ(enc->payload, std::string("\x01\xC1\x1F", 3));
}

TEST(IndexCodecTest, BitsAndSymbolWidths) {
  EXPECT_EQ(BitsPerIndex(2), 1);
  EXPECT_EQ(BitsPerIndex(128), 7);
  EXPECT_EQ(BitsPerIndex(129), 8);
  EXPECT_EQ(BitsPerIndex(100), 7);
  EXPECT_EQ(SymbolBytes(256), 1);
  EXPECT_EQ(SymbolBytes(257), 2);
}

TEST(IndexCodecTest, V2xRealGridPacksTo30800Bytes) {
  // SPEC §4: one agent at the v2x_real preset, 100 x 352 indices at 7 bits.
  const IndexGrid g{1, 100, 352, 128};
  std::vector<int32_t> v(g.cells(), 5);
  auto enc = EncodeIndices(v, g, {IndexEncoding::kBitpack});
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(enc->payload.size(), 30800u);
}

TEST(IndexCodecTest, RoundTripBothEncodingsManyShapes) {
  std::mt19937 rng(42);
  for (int64_t dict : {2, 3, 100, 128, 256, 300, 4096}) {
    for (int trial = 0; trial < 5; ++trial) {
      const IndexGrid g{1 + trial % 3, 1 + trial * 7, 3 + trial * 11, dict};
      const auto v = RandomIndices(g, rng, 0.7);
      for (IndexEncoding e : {IndexEncoding::kBitpack, IndexEncoding::kZstd}) {
        auto enc = EncodeIndices(v, g, {e});
        ASSERT_TRUE(enc.ok()) << enc.status();
        std::vector<int32_t> back;
        ASSERT_TRUE(DecodeIndices(*enc, g, {}, &back).ok()) << EncodingName(e) << " dict " << dict;
        EXPECT_EQ(back, v);
      }
    }
  }
}

TEST(IndexCodecTest, ZstdBeatsBitpackOnSkewedMaps) {
  std::mt19937 rng(1);
  const IndexGrid g{1, 50, 176, 128};
  const auto v = RandomIndices(g, rng, 0.9);
  auto packed = EncodeIndices(v, g, {IndexEncoding::kBitpack});
  auto z = EncodeIndices(v, g, {IndexEncoding::kZstd});
  ASSERT_TRUE(packed.ok() && z.ok());
  EXPECT_LT(z->payload.size(), packed->payload.size());
  // Never below the order-0 entropy bound by more than the symbols' shared structure
  // allows: for independent symbols the bound holds.
  const double bound_bytes = IndexEntropyBits(v, g.dict_size) * g.cells() / 8;
  EXPECT_GT(static_cast<double>(z->payload.size()), 0.9 * bound_bytes);
}

TEST(IndexCodecTest, EncoderRejectsWrongCountAndRange) {
  const IndexGrid g{1, 2, 2, 100};
  EXPECT_EQ(EncodeIndices({1, 2, 3}, g, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeIndices({1, 2, 3, 100}, g, {}).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(IndexCodecTest, DecoderRejectsMalformedBitpack) {
  const IndexGrid g{1, 2, 4, 100};
  auto enc = EncodeIndices({0, 1, 2, 3, 4, 5, 6, 99}, g, {IndexEncoding::kBitpack});
  ASSERT_TRUE(enc.ok());
  std::vector<int32_t> out;

  EncodedIndices truncated = *enc;
  truncated.payload.pop_back();
  EXPECT_EQ(DecodeIndices(truncated, g, {}, &out).code(), absl::StatusCode::kDataLoss);

  EncodedIndices longer = *enc;
  longer.payload.push_back('\0');
  EXPECT_EQ(DecodeIndices(longer, g, {}, &out).code(), absl::StatusCode::kDataLoss);

  EncodedIndices wrong_bits = *enc;
  wrong_bits.bits_per_index = 8;
  EXPECT_EQ(DecodeIndices(wrong_bits, g, {}, &out).code(), absl::StatusCode::kInvalidArgument);

  // 7 bits can say 127, but this codebook has 100 codes.
  EncodedIndices out_of_range = *enc;
  out_of_range.payload[0] = static_cast<char>(0x7f);
  EXPECT_EQ(DecodeIndices(out_of_range, g, {}, &out).code(), absl::StatusCode::kOutOfRange);

  // 8 indices x 7 bits = 56 bits = 7 bytes exactly: no padding. Use 3 indices for padding.
  const IndexGrid g3{1, 1, 3, 128};
  auto e3 = EncodeIndices({1, 2, 3}, g3, {IndexEncoding::kBitpack});
  ASSERT_TRUE(e3.ok());
  e3->payload.back() = static_cast<char>(e3->payload.back() | 0x80);
  EXPECT_EQ(DecodeIndices(*e3, g3, {}, &out).code(), absl::StatusCode::kDataLoss);

  DecodeLimits tiny;
  tiny.max_decoded_bytes = 4;
  EXPECT_EQ(DecodeIndices(*enc, g, tiny, &out).code(), absl::StatusCode::kResourceExhausted);
}

TEST(IndexCodecTest, DecoderRejectsMalformedZstd) {
  const IndexGrid g{1, 16, 16, 128};
  std::vector<int32_t> v(g.cells(), 7);
  auto enc = EncodeIndices(v, g, {IndexEncoding::kZstd});
  ASSERT_TRUE(enc.ok());
  std::vector<int32_t> out;

  EncodedIndices truncated = *enc;
  truncated.payload.resize(truncated.payload.size() - 3);
  EXPECT_EQ(DecodeIndices(truncated, g, {}, &out).code(), absl::StatusCode::kDataLoss);

  EncodedIndices garbage = *enc;
  garbage.payload = "not zstd at all";
  EXPECT_EQ(DecodeIndices(garbage, g, {}, &out).code(), absl::StatusCode::kDataLoss);

  EncodedIndices lying = *enc;
  lying.decoded_bytes = 1 << 30;
  EXPECT_EQ(DecodeIndices(lying, g, {}, &out).code(), absl::StatusCode::kInvalidArgument);

  // A frame that really decompresses to more than the grid: a "zip bomb" for this grid.
  const IndexGrid big{1, 1024, 1024, 128};
  auto bomb = EncodeIndices(std::vector<int32_t>(big.cells(), 0), big, {IndexEncoding::kZstd});
  ASSERT_TRUE(bomb.ok());
  bomb->decoded_bytes = g.cells();
  EXPECT_EQ(DecodeIndices(*bomb, g, {}, &out).code(), absl::StatusCode::kDataLoss);
  EXPECT_LT(bomb->payload.size(), 1000u);

  // Bytes after the frame: garbage, or a second frame (empty, so that the first one alone
  // would still have the right size).
  EncodedIndices trailing = *enc;
  trailing.payload += "xyz";
  absl::Status st = DecodeIndices(trailing, g, {}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("3 bytes after the compressed frame"), std::string::npos) << st;
  std::string empty_frame(ZSTD_compressBound(0), '\0');
  empty_frame.resize(ZSTD_compress(empty_frame.data(), empty_frame.size(), "", 0, 1));
  EncodedIndices two_frames = *enc;
  two_frames.payload += empty_frame;
  EXPECT_EQ(DecodeIndices(two_frames, g, {}, &out).code(), absl::StatusCode::kDataLoss);

  DecodeLimits tiny;
  tiny.max_decoded_bytes = 100;
  EXPECT_EQ(DecodeIndices(*enc, g, tiny, &out).code(), absl::StatusCode::kResourceExhausted);
}

TEST(IndexCodecTest, EntropyKnownAnswers) {
  EXPECT_DOUBLE_EQ(IndexEntropyBits({3, 3, 3, 3}, 8), 0.0);
  EXPECT_DOUBLE_EQ(IndexEntropyBits({0, 1, 2, 3}, 4), 2.0);
  EXPECT_NEAR(IndexEntropyBits({0, 0, 0, 1}, 2), 0.811278, 1e-6);
}

TEST(IndexCodecTest, ParsesEncodingNames) {
  EXPECT_EQ(*ParseEncoding("zstd"), IndexEncoding::kZstd);
  EXPECT_EQ(*ParseEncoding("bitpack"), IndexEncoding::kBitpack);
  EXPECT_FALSE(ParseEncoding("gzip").ok());
}

}  // namespace
}  // namespace qv2x::codec
