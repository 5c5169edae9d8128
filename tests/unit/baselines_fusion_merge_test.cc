// Late and early fusion merges with known answers: boxes and points moved from another
// agent's frame into the ego's, per-class NMS, the ego's own body and the range.
#include <cmath>
#include <vector>

#include "core/baselines/early_fusion.h"
#include "core/baselines/late_fusion.h"
#include "gtest/gtest.h"

namespace qv2x::baselines {
namespace {

// The other agent stands 20 m ahead of the ego, turned 90° to the left: its +x is the
// ego's +y.
const Pose kEgo{100, 50, 1.9, 0, 0, 0};
const Pose kOther{120, 50, 1.9, 0, 90, 0};

Detection Det(ObjectClass cls, double x, double y, double yaw, double score) {
  return {cls, {x, y, -1.0, 4.0, 1.8, 1.5, yaw}, score};
}

LateFusionOptions Options() {
  LateFusionOptions o;
  o.nms_thresh = 0.15;
  o.range = {-40, -20, -3, 40, 20, 1};
  o.ego_body = {-2.5, -1.1, 2.5, 1.1};
  return o;
}

TEST(LateFusion, MovesBoxesIntoTheEgoFrame) {
  // 5 m ahead of the other agent = 5 m to the ego's left of it: (20, 5); heading + 90°.
  const std::vector<AgentDetections> agents = {
      {Mat4::Identity(), {}},
      {RelativeTransform(kOther, kEgo), {Det(ObjectClass::kVehicle, 5, 0, 0.25, 0.8)}}};
  const std::vector<Detection> out = MergeLateFusion(agents, Options());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NEAR(out[0].box.x, 20, 1e-9);
  EXPECT_NEAR(out[0].box.y, 5, 1e-9);
  EXPECT_NEAR(out[0].box.z, -1.0, 1e-9);
  EXPECT_NEAR(out[0].box.yaw, 0.25 + kPi / 2, 1e-9);
  EXPECT_EQ(out[0].box.l, 4.0);
  EXPECT_EQ(out[0].score, 0.8);
}

TEST(LateFusion, PerClassNmsKeepsTheBestOfEachOverlap) {
  const Mat4 to_ego = RelativeTransform(kOther, kEgo);
  // The ego sees a vehicle at (20, 5); the other agent sees it too (at its (5, 0)) with a
  // higher score, 0.1 m off. A pedestrian-class box on the same spot is another class and
  // stays; a second vehicle elsewhere stays.
  const std::vector<AgentDetections> agents = {
      {Mat4::Identity(),
       {Det(ObjectClass::kVehicle, 20, 5, 0, 0.6), Det(ObjectClass::kPedestrian, 20, 5, 0, 0.3)}},
      {to_ego,
       {Det(ObjectClass::kVehicle, 5, 0.1, -kPi / 2, 0.9),
        Det(ObjectClass::kVehicle, -10, 0, -kPi / 2, 0.5)}}};
  const std::vector<Detection> out = MergeLateFusion(agents, Options());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].score, 0.9);  // the other agent's copy won
  EXPECT_NEAR(out[0].box.x, 19.9, 1e-9);
  EXPECT_NEAR(out[0].box.y, 5, 1e-9);
  EXPECT_EQ(out[1].score, 0.5);  // (-10, 0) of the other agent = the ego's (20, -10)
  EXPECT_NEAR(out[1].box.x, 20, 1e-9);
  EXPECT_NEAR(out[1].box.y, -10, 1e-9);
  EXPECT_EQ(out[2].cls, ObjectClass::kPedestrian);
}

TEST(LateFusion, DropsTheEgosOwnCarAndWhatLiesOutsideTheRange) {
  // The other agent's (a, b) is the ego's (20 - b, a).
  const Mat4 to_ego = RelativeTransform(kOther, kEgo);
  const std::vector<AgentDetections> agents = {
      {Mat4::Identity(), {Det(ObjectClass::kVehicle, 39, 0, 0, 0.4)}},  // reaches x = 41
      {to_ego,
       {Det(ObjectClass::kVehicle, 0, 19.7, -kPi / 2, 0.9),   // the ego's car, at (0.3, 0)
        Det(ObjectClass::kVehicle, 19.5, 20, -kPi / 2, 0.7),  // (0, 19.5): reaches y = 20.4
        Det(ObjectClass::kVehicle, 0, 10, -kPi / 2, 0.6)}}};  // (10, 0): kept
  const std::vector<Detection> out = MergeLateFusion(agents, Options());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].score, 0.6);
  EXPECT_NEAR(out[0].box.x, 10, 1e-9);
  EXPECT_NEAR(out[0].box.y, 0, 1e-9);
  EXPECT_NEAR(out[0].box.yaw, 0, 1e-9);
}

TEST(EarlyFusion, PointsAreMovedAndCroppedToTheEgosRange) {
  VoxelConfig v;
  v.lidar_range = {-40, -20, -3, 40, 20, 1};
  v.voxel_size = {0.4, 0.4, 4};
  v.ego_body_box = {-2.5, -1.1, 2.5, 1.1};
  const Mat4 to_ego = RelativeTransform(kOther, kEgo);
  const PointCloud sweep = {
      {5, 0, -1, 0.5f},    // → ego (20, 5, -1): sent
      {1, 0.5, -1, 0.1f},  // on the other agent's own body: not sent
      {0, 30, -1, 0.2f},   // → ego (-10, 0): sent
      {30, 0, -1, 0.3f},   // → ego (20, 30): outside the ego's range, not sent
      {0, 20, -1, 0.4f},   // → ego (0, 0): the ego's body, sent but cropped by the ego
      {5, 0, 2.5, 0.6f}};  // → ego z 2.5: above the range, not sent
  const PointCloud sent = PointsForEgo(sweep, to_ego, v);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].intensity, 0.5f);
  EXPECT_EQ(sent[1].intensity, 0.2f);
  EXPECT_EQ(sent[2].intensity, 0.4f);

  const PointCloud ego_sweep = {{3, 3, -1, 0.9f}, {50, 0, -1, 0.8f}};
  const PointCloud merged = MergeEarlyFusion({{Mat4::Identity(), ego_sweep}, {to_ego, sent}}, v);
  ASSERT_EQ(merged.size(), 3u);
  // The ego's own point first (first come, first pillar), then the other agent's.
  EXPECT_EQ(merged[0].intensity, 0.9f);
  EXPECT_NEAR(merged[1].x, 20, 1e-5);
  EXPECT_NEAR(merged[1].y, 5, 1e-5);
  EXPECT_NEAR(merged[1].z, -1, 1e-5);
  EXPECT_NEAR(merged[2].x, -10, 1e-5);
  EXPECT_NEAR(merged[2].y, 0, 1e-5);
}

}  // namespace
}  // namespace qv2x::baselines
