// zstd dictionaries for index maps: trained on maps, named by digest, refused when absent.
#include "core/codec/zstd_dictionary.h"

#include <gtest/gtest.h>

#include <random>

#include "core/codec/index_codec.h"

namespace qv2x::codec {
namespace {

// Maps like a codebook's: a background code over most of the map and objects, each one of
// a few 3 x 5 code patterns that recur from map to map (what a dictionary can learn), at
// positions that differ from map to map.
std::vector<int32_t> BlobMap(const IndexGrid& g, std::mt19937& rng) {
  std::mt19937 fixed(1234);  // the same patterns in every map
  std::vector<std::vector<int32_t>> patterns(4, std::vector<int32_t>(15));
  for (auto& p : patterns) {
    for (auto& x : p) x = static_cast<int32_t>(fixed() % g.dict_size);
  }
  std::vector<int32_t> v(g.cells(), 17);
  std::uniform_int_distribution<int64_t> row(0, g.height - 4), col(0, g.width - 6);
  for (int b = 0; b < 12; ++b) {
    const int64_t r = row(rng), c = col(rng);
    const std::vector<int32_t>& p = patterns[rng() % patterns.size()];
    for (int64_t y = 0; y < 3; ++y) {
      for (int64_t x = 0; x < 5; ++x) v[(r + y) * g.width + c + x] = p[y * 5 + x];
    }
  }
  return v;
}

std::shared_ptr<const ZstdDictionary> TrainOn(const IndexGrid& g, std::mt19937& rng) {
  std::vector<std::string> samples;
  for (int i = 0; i < 200; ++i) samples.push_back(*RawSymbols(BlobMap(g, rng), g));
  auto dict = ZstdDictionary::Train(samples, 4096, 3);
  EXPECT_TRUE(dict.ok()) << dict.status();
  return dict.ok() ? *dict : nullptr;
}

TEST(ZstdDictionaryTest, RoundTripsAndShrinksSmallMaps) {
  std::mt19937 rng(11);
  const IndexGrid g{1, 24, 40, 128};
  auto dict = TrainOn(g, rng);
  ASSERT_NE(dict, nullptr);
  EXPECT_EQ(dict->digest().size(), 16u);
  EXPECT_NE(dict->id(), 0u);
  size_t plain_bytes = 0, dict_bytes = 0;
  for (int i = 0; i < 20; ++i) {
    const auto v = BlobMap(g, rng);
    auto plain = EncodeIndices(v, g, {IndexEncoding::kZstd});
    auto with = EncodeIndices(v, g, {IndexEncoding::kZstd, 3, dict.get()});
    ASSERT_TRUE(plain.ok() && with.ok()) << with.status();
    EXPECT_EQ(with->dictionary_digest, dict->digest());
    std::vector<int32_t> out;
    ASSERT_TRUE(DecodeIndices(*with, g, {}, &out, dict.get()).ok());
    EXPECT_EQ(out, v);
    plain_bytes += plain->payload.size();
    dict_bytes += with->payload.size();
  }
  EXPECT_LT(dict_bytes, plain_bytes * 8 / 10) << dict_bytes << " vs " << plain_bytes;
}

TEST(ZstdDictionaryTest, RefusesMissingOrWrongDictionary) {
  std::mt19937 rng(5);
  const IndexGrid g{1, 24, 40, 128};
  auto dict = TrainOn(g, rng);
  auto other = TrainOn(g, rng);
  ASSERT_NE(dict, nullptr);
  ASSERT_NE(other, nullptr);
  ASSERT_NE(dict->digest(), other->digest());
  const auto v = BlobMap(g, rng);
  auto enc = EncodeIndices(v, g, {IndexEncoding::kZstd, 3, dict.get()});
  ASSERT_TRUE(enc.ok());
  std::vector<int32_t> out;
  absl::Status st = DecodeIndices(*enc, g, {}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(st.message().find(dict->digest()), std::string::npos) << st;
  EXPECT_EQ(DecodeIndices(*enc, g, {}, &out, other.get()).code(), absl::StatusCode::kNotFound);
  // The digest stripped from the map: the frame still names its dictionary id.
  EncodedIndices stripped = *enc;
  stripped.dictionary_digest.clear();
  EXPECT_EQ(DecodeIndices(stripped, g, {}, &out).code(), absl::StatusCode::kDataLoss);
  // The other dictionary's digest on this frame: ids differ.
  EncodedIndices relabelled = *enc;
  relabelled.dictionary_digest = other->digest();
  EXPECT_EQ(DecodeIndices(relabelled, g, {}, &out, other.get()).code(),
            absl::StatusCode::kDataLoss);
  // Dictionaries are for zstd only.
  EXPECT_EQ(EncodeIndices(v, g, {IndexEncoding::kBitpack, 3, dict.get()}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto packed = EncodeIndices(v, g, {IndexEncoding::kBitpack});
  packed->dictionary_digest = dict->digest();
  EXPECT_EQ(DecodeIndices(*packed, g, {}, &out, dict.get()).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ZstdDictionaryTest, SparseMapsUseItToo) {
  std::mt19937 rng(9);
  const IndexGrid g{1, 24, 40, 128};
  auto dict = TrainOn(g, rng);
  ASSERT_NE(dict, nullptr);
  const auto v = BlobMap(g, rng);
  std::vector<uint8_t> mask(g.cells(), 0);
  for (int64_t c = 0; c < g.cells(); c += 3) mask[c] = 1;
  auto enc = EncodeIndices(v, g, {IndexEncoding::kZstd, 3, dict.get()}, &mask);
  ASSERT_TRUE(enc.ok());
  std::vector<int32_t> out;
  ASSERT_TRUE(DecodeIndices(*enc, g, {}, &out, dict.get()).ok());
  for (int64_t c = 0; c < g.cells(); ++c) EXPECT_EQ(out[c], mask[c] ? v[c] : kUnsentIndex);
}

TEST(ZstdDictionaryTest, RefusesBytesThatAreNoDictionary) {
  EXPECT_EQ(ZstdDictionary::FromBytes(std::string(1000, 'x'), 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ZstdDictionary::Load("/nonexistent/dict.zdict", 3).ok());
  // Too few samples to learn from.
  EXPECT_EQ(ZstdDictionary::Train({"ab", "cd"}, 4096, 3).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace qv2x::codec
