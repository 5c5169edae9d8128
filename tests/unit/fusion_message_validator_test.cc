// MessageValidator: every refusal with its reason, limits at their edges, nothing echoed
// back unbounded.
#include "fusion_server/message_validator.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cmath>
#include <limits>

namespace qv2x::fusion {
namespace {

constexpr int64_t kNow = 1'800'000'000'000'000'000;  // ns, 2027
const codec::IndexGrid kGrid{1, 8, 8, 16};
const char kDigest[] = "3f5a0c1d";

ValidatorOptions Options() {
  ValidatorOptions o;
  o.agents = {0, 1, -1};
  o.grid = kGrid;
  o.codebooks = {kDigest};
  o.feature_channels = 64;
  o.max_message_bytes = 4096;
  o.max_decoded_bytes = 4096;
  return o;
}

v1::FeatureMessage Valid(codec::IndexEncoding e = codec::IndexEncoding::kBitpack) {
  v1::FeatureMessage m;
  m.set_agent_id(1);
  m.set_frame_id(7);
  m.set_capture_time_unix_ns(kNow - 50'000'000);
  m.mutable_lidar_pose()->set_x(120.5);
  m.mutable_lidar_pose()->set_yaw(-90);
  m.mutable_grid()->set_levels(kGrid.levels);
  m.mutable_grid()->set_height(kGrid.height);
  m.mutable_grid()->set_width(kGrid.width);
  m.mutable_grid()->set_dict_size(kGrid.dict_size);
  m.set_codebook_digest(kDigest);
  m.set_precision(v1::PRECISION_INT8);
  std::vector<int32_t> v(kGrid.cells());
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(i % 16);
  auto enc = codec::EncodeIndices(v, kGrid, {e});
  m.set_encoding(e == codec::IndexEncoding::kZstd ? v1::INDEX_ENCODING_ZSTD
                                                  : v1::INDEX_ENCODING_BITPACK);
  m.set_bits_per_index(enc->bits_per_index);
  m.set_decoded_bytes(enc->decoded_bytes);
  m.set_payload(enc->payload);
  return m;
}

Rejection Refusal(const v1::FeatureMessage& m, const ValidatorOptions& o = Options()) {
  MessageValidator v(o);
  ReceivedMessage out;
  Rejection why;
  EXPECT_FALSE(v.Validate(m, kNow, &out, &why)) << m.ShortDebugString().substr(0, 200);
  EXPECT_FALSE(why.detail.empty());
  return why;
}

TEST(MessageValidatorTest, AValidMessageIsDecoded) {
  for (auto e : {codec::IndexEncoding::kBitpack, codec::IndexEncoding::kZstd}) {
    MessageValidator v(Options());
    ReceivedMessage out;
    Rejection why;
    ASSERT_TRUE(v.Validate(Valid(e), kNow, &out, &why)) << why.detail;
    EXPECT_EQ(out.indices.size(), 64u);
    EXPECT_EQ(out.indices[17], 1);
    EXPECT_EQ(out.lidar_pose.x, 120.5);
    EXPECT_EQ(out.contribution.fp32_feature_bytes(), 64u * 8 * 8 * 4);
  }
}

TEST(MessageValidatorTest, AbsurdPosesAreRefused) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    const char* what;
    void (*spoil)(v1::Pose*, double);
    double value;
  } cases[] = {
      {"x NaN", [](v1::Pose* p, double v) { p->set_x(v); }, nan},
      {"y inf", [](v1::Pose* p, double v) { p->set_y(v); }, -inf},
      {"z 1e30", [](v1::Pose* p, double v) { p->set_z(v); }, 1e30},
      {"x just past 100 km", [](v1::Pose* p, double v) { p->set_x(v); }, 100'000.5},
      {"yaw 1e30", [](v1::Pose* p, double v) { p->set_yaw(v); }, 1e30},
      {"roll NaN", [](v1::Pose* p, double v) { p->set_roll(v); }, nan},
      {"pitch 1e300", [](v1::Pose* p, double v) { p->set_pitch(v); }, 1e300},
  };
  for (const Case& c : cases) {
    v1::FeatureMessage m = Valid();
    c.spoil(m.mutable_lidar_pose(), c.value);
    EXPECT_EQ(Refusal(m).reason, v1::REJECT_REASON_POSE) << c.what;
  }
  // The edges of the bounds pass, and their warp against the farthest pose stays finite.
  v1::FeatureMessage edge = Valid();
  edge.mutable_lidar_pose()->set_x(-100'000);
  edge.mutable_lidar_pose()->set_yaw(3600);
  MessageValidator v(Options());
  ReceivedMessage out;
  Rejection why;
  EXPECT_TRUE(v.Validate(edge, kNow, &out, &why)) << why.detail;
  const Mat4 rel = RelativeTransform(out.lidar_pose, Pose{1e5, 1e5, 1e5, 3600, -3600, 3600});
  for (double x : rel.m) EXPECT_TRUE(std::isfinite(x));
}

TEST(MessageValidatorTest, CaptureTimesFarFromTheClockAreRefused) {
  v1::FeatureMessage ahead = Valid();
  ahead.set_capture_time_unix_ns(kNow + 6'000'000'000);
  Rejection r = Refusal(ahead);
  EXPECT_EQ(r.reason, v1::REJECT_REASON_FRAME_WINDOW);
  EXPECT_NE(r.detail.find("6000 ms ahead"), std::string::npos) << r.detail;
  v1::FeatureMessage far_ahead = Valid();
  far_ahead.set_capture_time_unix_ns(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(Refusal(far_ahead).reason, v1::REJECT_REASON_FRAME_WINDOW);
  v1::FeatureMessage old = Valid();
  old.set_capture_time_unix_ns(kNow - 61'000'000'000);
  EXPECT_EQ(Refusal(old).reason, v1::REJECT_REASON_FRAME_WINDOW);
  v1::FeatureMessage epoch = Valid();
  epoch.set_capture_time_unix_ns(1);
  EXPECT_EQ(Refusal(epoch).reason, v1::REJECT_REASON_FRAME_WINDOW);
  v1::FeatureMessage negative = Valid();
  negative.set_capture_time_unix_ns(-5);
  EXPECT_EQ(Refusal(negative).reason, v1::REJECT_REASON_MALFORMED);
}

TEST(MessageValidatorTest, UnknownEnumValuesAreRefused) {
  v1::FeatureMessage p = Valid();
  p.set_precision(static_cast<v1::Precision>(77));
  Rejection r = Refusal(p);
  EXPECT_EQ(r.reason, v1::REJECT_REASON_MALFORMED);
  EXPECT_NE(r.detail.find("precision 77"), std::string::npos) << r.detail;
  v1::FeatureMessage unspecified = Valid();
  unspecified.set_precision(v1::PRECISION_UNSPECIFIED);
  EXPECT_EQ(Refusal(unspecified).reason, v1::REJECT_REASON_MALFORMED);
  v1::FeatureMessage e = Valid();
  e.set_encoding(static_cast<v1::IndexEncoding>(-3));
  EXPECT_EQ(Refusal(e).reason, v1::REJECT_REASON_MALFORMED);
}

TEST(MessageValidatorTest, PayloadsThatLieAreRefused) {
  v1::FeatureMessage trailing = Valid(codec::IndexEncoding::kZstd);
  trailing.mutable_payload()->append("\x28\xb5\x2f\xfd", 4);
  EXPECT_EQ(Refusal(trailing).reason, v1::REJECT_REASON_PAYLOAD_LENGTH);
  v1::FeatureMessage size_lie = Valid(codec::IndexEncoding::kZstd);
  size_lie.set_decoded_bytes(size_lie.decoded_bytes() * 2);
  EXPECT_EQ(Refusal(size_lie).reason, v1::REJECT_REASON_PAYLOAD_LENGTH);
  // A bomb: 1 MB of zeros in a few hundred bytes, claiming the grid's size.
  std::string zeros(1 << 20, '\0');
  std::string bomb(ZSTD_compressBound(zeros.size()), '\0');
  bomb.resize(ZSTD_compress(bomb.data(), bomb.size(), zeros.data(), zeros.size(), 3));
  v1::FeatureMessage b = Valid(codec::IndexEncoding::kZstd);
  b.set_payload(bomb);
  EXPECT_EQ(Refusal(b).reason, v1::REJECT_REASON_OVERSIZED);
  v1::FeatureMessage bits = Valid();
  bits.set_bits_per_index(9);
  EXPECT_EQ(Refusal(bits).reason, v1::REJECT_REASON_PAYLOAD_LENGTH);
}

TEST(MessageValidatorTest, NothingIsEchoedBackUnbounded) {
  v1::FeatureMessage long_digest = Valid();
  long_digest.set_codebook_digest(std::string(3000, 'a'));
  Rejection r = Refusal(long_digest);
  EXPECT_EQ(r.reason, v1::REJECT_REASON_MALFORMED);
  EXPECT_LT(r.detail.size(), 200u) << r.detail;
  v1::FeatureMessage unknown = Valid();
  unknown.set_codebook_digest(std::string("\x01\xff") + std::string(100, 'z'));
  r = Refusal(unknown);
  EXPECT_EQ(r.reason, v1::REJECT_REASON_CODEBOOK_DIGEST);
  EXPECT_LT(r.detail.size(), 200u) << r.detail;
  EXPECT_NE(r.detail.find("\\x01\\xff"), std::string::npos) << r.detail;
  EXPECT_EQ(r.detail.find('\x01'), std::string::npos);
}

TEST(MessageValidatorTest, ShapesAgentsAndSizes) {
  v1::FeatureMessage agent = Valid();
  agent.set_agent_id(42);
  EXPECT_EQ(Refusal(agent).reason, v1::REJECT_REASON_UNKNOWN_AGENT);
  v1::FeatureMessage grid = Valid();
  grid.mutable_grid()->set_width(9);
  EXPECT_EQ(Refusal(grid).reason, v1::REJECT_REASON_GRID_SHAPE);
  v1::FeatureMessage big = Valid();
  big.mutable_payload()->append(5000, 'x');
  EXPECT_EQ(Refusal(big).reason, v1::REJECT_REASON_OVERSIZED);
  ValidatorOptions o = Options();
  o.codebooks = {"another"};
  EXPECT_EQ(Refusal(Valid(), o).reason, v1::REJECT_REASON_CODEBOOK_DIGEST);
}

}  // namespace
}  // namespace qv2x::fusion

namespace qv2x::fusion {
namespace {

// The Valid() message re-coded sparse (every other cell) and, for zstd, against `dict`.
v1::FeatureMessage SparseValid(codec::IndexEncoding e, const codec::ZstdDictionary* dict) {
  v1::FeatureMessage m = Valid(e);
  std::vector<int32_t> v(kGrid.cells());
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(i % 16);
  std::vector<uint8_t> mask(kGrid.cells());
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = i % 2;
  auto enc = codec::EncodeIndices(v, kGrid, {e, 3, dict}, &mask);
  EXPECT_TRUE(enc.ok()) << enc.status();
  m.set_bits_per_index(enc->bits_per_index);
  m.set_decoded_bytes(enc->decoded_bytes);
  m.set_sparse(true);
  m.set_sent_cells(enc->sent_cells);
  m.set_dictionary_digest(enc->dictionary_digest);
  m.set_payload(enc->payload);
  return m;
}

std::shared_ptr<const codec::ZstdDictionary> SmallDictionary(int seed) {
  std::vector<std::string> samples;
  for (int s = 0; s < 100; ++s) {
    std::string raw(64, '\0');
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>((i * (seed + s % 5)) % 16);
    samples.push_back(raw);
  }
  auto d = codec::ZstdDictionary::Train(samples, 1024, 3);
  EXPECT_TRUE(d.ok()) << d.status();
  return *d;
}

TEST(MessageValidatorTest, SparseMapsDecodeWithUnsentCells) {
  for (auto e : {codec::IndexEncoding::kBitpack, codec::IndexEncoding::kZstd}) {
    MessageValidator v(Options());
    ReceivedMessage out;
    Rejection why;
    ASSERT_TRUE(v.Validate(SparseValid(e, nullptr), kNow, &out, &why)) << why.detail;
    ASSERT_EQ(out.indices.size(), 64u);
    EXPECT_EQ(out.indices[16], codec::kUnsentIndex);
    EXPECT_EQ(out.indices[17], 1);
    EXPECT_EQ(out.contribution.sent_cells(), 32u);
    EXPECT_EQ(out.contribution.index_count(), 32u);
  }
  v1::FeatureMessage lie = SparseValid(codec::IndexEncoding::kBitpack, nullptr);
  lie.set_sent_cells(31);
  EXPECT_EQ(Refusal(lie).reason, v1::REJECT_REASON_PAYLOAD_LENGTH);
}

TEST(MessageValidatorTest, DictionariesAreLookedUpByDigest) {
  auto dict = SmallDictionary(1), other = SmallDictionary(3);
  ValidatorOptions o = Options();
  o.dictionaries[dict->digest()] = dict;
  MessageValidator v(o);
  ReceivedMessage out;
  Rejection why;
  const v1::FeatureMessage m = SparseValid(codec::IndexEncoding::kZstd, dict.get());
  ASSERT_TRUE(v.Validate(m, kNow, &out, &why)) << why.detail;
  EXPECT_EQ(out.contribution.dictionary_digest(), dict->digest());
  // Not held: refused with its own reason, naming what is held.
  Rejection r = Refusal(SparseValid(codec::IndexEncoding::kZstd, other.get()), o);
  EXPECT_EQ(r.reason, v1::REJECT_REASON_DICTIONARY);
  EXPECT_NE(r.detail.find(dict->digest()), std::string::npos) << r.detail;
  EXPECT_EQ(Refusal(m).reason, v1::REJECT_REASON_DICTIONARY);  // a service holding none
  v1::FeatureMessage long_digest = m;
  long_digest.set_dictionary_digest(std::string(1000, 'a'));
  EXPECT_EQ(Refusal(long_digest, o).reason, v1::REJECT_REASON_MALFORMED);
}

}  // namespace
}  // namespace qv2x::fusion
