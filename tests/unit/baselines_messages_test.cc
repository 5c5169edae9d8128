// The fusion baselines' messages: exact sizes (63-byte header, 17 bytes a box, 16 a point,
// 4 a feature value), round trips (boxes to their documented quantisation, points and
// features exactly, raw and zstd), and refusals of damaged or hostile bytes.
#include <cmath>
#include <string>
#include <vector>

#include "core/baselines/box_message.h"
#include "core/baselines/feature_message.h"
#include "core/baselines/point_message.h"
#include "gtest/gtest.h"

namespace qv2x::baselines {
namespace {

MessageHeader Header() { return {-3, 1234567890123ull, {105.25, -31.5, 4.4, 0.5, 179.25, -1.0}}; }

Detection Det(ObjectClass cls, double x, double y, double yaw, double score) {
  return {cls, {x, y, -1.2, 4.43, 1.87, 1.52, yaw}, score};
}

void ExpectHeader(const MessageHeader& got) {
  const MessageHeader want = Header();
  EXPECT_EQ(got.agent_id, want.agent_id);
  EXPECT_EQ(got.frame_id, want.frame_id);
  EXPECT_EQ(got.lidar_pose.ToArray(), want.lidar_pose.ToArray());
}

TEST(BoxMessage, SizeIsHeaderCountAndSeventeenBytesABox) {
  EXPECT_EQ(kMessageHeaderBytes, 63u);
  std::vector<Detection> boxes;
  for (int n : {0, 1, 30}) {
    boxes.resize(n, Det(ObjectClass::kVehicle, 10, -5, 0.3, 0.7));
    auto m = EncodeBoxMessage(Header(), boxes);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->size(), 63u + 2u + 17u * n) << n << " boxes";
  }
}

TEST(BoxMessage, RoundTripKeepsEveryFieldToItsQuantisation) {
  const std::vector<Detection> boxes = {Det(ObjectClass::kVehicle, 12.345, -6.789, 3.0, 0.91234),
                                        Det(ObjectClass::kPedestrian, -51.2, 25.6, -3.1415, 0.2),
                                        Det(ObjectClass::kTruck, 327.6, -327.6, 1.5707, 1.0)};
  for (Compression c : {Compression::kNone, Compression::kZstd}) {
    auto m = EncodeBoxMessage(Header(), boxes, c);
    ASSERT_TRUE(m.ok()) << m.status();
    auto got = DecodeBoxMessage(*m);
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectHeader(got->header);
    ASSERT_EQ(got->boxes.size(), boxes.size());
    for (size_t i = 0; i < boxes.size(); ++i) {
      const Box3D &a = boxes[i].box, &b = got->boxes[i].box;
      EXPECT_EQ(got->boxes[i].cls, boxes[i].cls);
      for (auto [x, y] :
           {std::pair{a.x, b.x}, {a.y, b.y}, {a.z, b.z}, {a.l, b.l}, {a.w, b.w}, {a.h, b.h}}) {
        EXPECT_NEAR(y, x, 0.005 + 1e-12);
      }
      EXPECT_NEAR(std::remainder(b.yaw - a.yaw, 2 * kPi), 0, kPi / 65536 + 1e-12);
      EXPECT_NEAR(got->boxes[i].score, boxes[i].score, 0.5 / 65535 + 1e-12);
    }
  }
  // Quantised values survive a second trip unchanged.
  auto once = DecodeBoxMessage(*EncodeBoxMessage(Header(), boxes));
  auto twice = DecodeBoxMessage(*EncodeBoxMessage(Header(), once->boxes));
  for (size_t i = 0; i < boxes.size(); ++i) {
    EXPECT_EQ(twice->boxes[i].box.x, once->boxes[i].box.x);
    EXPECT_EQ(twice->boxes[i].box.yaw, once->boxes[i].box.yaw);
    EXPECT_EQ(twice->boxes[i].score, once->boxes[i].score);
  }
}

TEST(BoxMessage, RefusesWhatDoesNotFit) {
  auto far = EncodeBoxMessage(Header(), {Det(ObjectClass::kVehicle, 400, 0, 0, 0.5)});
  EXPECT_EQ(far.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(far.status().message().find("box 0: x"), std::string::npos) << far.status();
  Detection flat = Det(ObjectClass::kVehicle, 1, 1, 0, 0.5);
  flat.box.w = 0;
  EXPECT_EQ(EncodeBoxMessage(Header(), {flat}).status().code(), absl::StatusCode::kInvalidArgument);
  Detection nan = Det(ObjectClass::kVehicle, 1, 1, std::nan(""), 0.5);
  EXPECT_EQ(EncodeBoxMessage(Header(), {nan}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BoxMessage, RefusesDamagedBytes) {
  const std::string good = *EncodeBoxMessage(
      Header(),
      {Det(ObjectClass::kTruck, 1, 2, 0.5, 0.5), Det(ObjectClass::kVehicle, 3, 4, 0.5, 0.5)});
  EXPECT_EQ(DecodeBoxMessage(good.substr(0, 40)).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeBoxMessage(good.substr(0, good.size() - 1)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeBoxMessage(good + "x").status().code(), absl::StatusCode::kDataLoss);
  std::string bad_class = good;
  bad_class[63 + 2] = 7;  // the first box's class byte
  EXPECT_EQ(DecodeBoxMessage(bad_class).status().code(), absl::StatusCode::kInvalidArgument);
  std::string bad_version = good;
  bad_version[0] = 9;
  EXPECT_NE(DecodeBoxMessage(bad_version).status().message().find("version"), std::string::npos);
  // A point message is not a box message.
  const std::string points = *EncodePointMessage(Header(), {{1, 2, 3, 0.5f}});
  EXPECT_NE(DecodeBoxMessage(points).status().message().find("kind"), std::string::npos);
}

TEST(PointMessage, ExactRoundTripAndSixteenBytesAPoint) {
  PointCloud cloud;
  for (int i = 0; i < 1000; ++i) {
    cloud.push_back({0.01f * i, -3.5f + 0.002f * i, -1.75f, static_cast<float>(i % 7) / 7});
  }
  auto raw = EncodePointMessage(Header(), cloud);
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->size(), 63u + 4u + 16u * cloud.size());
  auto packed = EncodePointMessage(Header(), cloud, Compression::kZstd);
  ASSERT_TRUE(packed.ok()) << packed.status();
  EXPECT_LT(packed->size(), raw->size());
  for (const std::string* m : {&*raw, &*packed}) {
    auto got = DecodePointMessage(*m);
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectHeader(got->header);
    ASSERT_EQ(got->points.size(), cloud.size());
    for (size_t i = 0; i < cloud.size(); ++i) {
      EXPECT_EQ(got->points[i].x, cloud[i].x);
      EXPECT_EQ(got->points[i].y, cloud[i].y);
      EXPECT_EQ(got->points[i].z, cloud[i].z);
      EXPECT_EQ(got->points[i].intensity, cloud[i].intensity);
    }
  }
}

TEST(PointMessage, RefusesAZstdBodyThatClaimsTooMuch) {
  PointCloud cloud(5000, Point{1, 2, 3, 0});
  const std::string packed = *EncodePointMessage(Header(), cloud, Compression::kZstd);
  DecodeLimits small;
  small.max_body_bytes = 1000;
  EXPECT_EQ(DecodePointMessage(packed, small).status().code(),
            absl::StatusCode::kResourceExhausted);
  std::string trailing = packed + "tail";
  EXPECT_EQ(DecodePointMessage(trailing).status().code(), absl::StatusCode::kDataLoss);
}

TEST(FeatureMessage, ExactRoundTripOfAFloatMap) {
  const std::array<int64_t, 3> shape{4, 3, 5};
  std::vector<float> values(60);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * static_cast<float>(i) - 3;
  for (Compression c : {Compression::kNone, Compression::kZstd}) {
    auto m = EncodeFeatureMessage(Header(), shape, values, c);
    ASSERT_TRUE(m.ok()) << m.status();
    if (c == Compression::kNone) {
      EXPECT_EQ(m->size(), 63u + 6u + 4u * 60u);
    }
    auto got = DecodeFeatureMessage(*m);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->shape, shape);
    EXPECT_EQ(got->values, values);
  }
  EXPECT_EQ(EncodeFeatureMessage(Header(), {4, 3, 4}, values).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qv2x::baselines
