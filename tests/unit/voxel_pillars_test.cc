// Pillar pipeline (SPEC §3): cropping, pillar assignment and the 10 point features on
// hand-made clouds, and multi-agent collation (SPEC §5).
#include <cmath>
#include <limits>
#include <vector>

#include "core/voxel/pillars.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

// 8 x 4 grid of 1 m pillars over x [-4, 4), y [-2, 2), z [-3, 1).
VoxelConfig SmallGrid(int max_points = 4) {
  VoxelConfig c;
  c.lidar_range = {-4, -2, -3, 4, 2, 1};
  c.voxel_size = {1, 1, 4};
  c.max_points_per_voxel = max_points;
  c.max_voxel_train = 100;
  c.max_voxel_test = 100;
  c.use_intensity = true;
  c.ego_body_box = {-1, -0.5, 1, 0.5};
  return c;
}

// Slot `slot` of pillar `p`: its 10 features.
std::vector<float> Features(const Pillars& p, int pillar, int slot) {
  const float* f =
      &p.features[(static_cast<size_t>(pillar) * p.max_points + slot) * kNumPointFeatures];
  return std::vector<float>(f, f + kNumPointFeatures);
}

void ExpectFeatures(const Pillars& p, int pillar, int slot, const std::vector<float>& expected) {
  const std::vector<float> got = Features(p, pillar, slot);
  for (int k = 0; k < kNumPointFeatures; ++k) {
    EXPECT_FLOAT_EQ(got[k], expected[k])
        << "pillar " << pillar << " slot " << slot << " feature " << k;
  }
}

// Pillar (row 2, col 4) gets p0, p1, p3; pillar (row 0, col 0) gets p2.
PointCloud HandCloud() {
  return {{0.25f, 0.5f, -1.0f, 0.1f},
          {0.75f, 0.25f, 0.0f, 0.2f},
          {-3.75f, -1.25f, -2.0f, 0.3f},
          {0.5f, 0.75f, 0.25f, 0.4f}};
}

TEST(PillarizeTest, CountsCoordsAndTheTenFeatures) {
  const Pillars p = Pillarize(HandCloud(), SmallGrid(4), PillarMode::kTest);
  EXPECT_EQ(p.grid_w, 8);
  EXPECT_EQ(p.grid_h, 4);
  EXPECT_EQ(p.max_points, 4);
  ASSERT_EQ(p.num_pillars, 2);
  EXPECT_EQ(p.num_points, (std::vector<int32_t>{3, 1}));
  EXPECT_EQ(p.coords, (std::vector<int32_t>{2, 4, 0, 0}));  // (row, col), first come first
  ASSERT_EQ(p.features.size(), 2u * 4 * kNumPointFeatures);

  // Pillar 0: mean (0.5, 0.5, -0.25), centre (-4 + 4.5, -2 + 2.5, -3 + 2) = (0.5, 0.5, -1).
  ExpectFeatures(p, 0, 0, {0.25f, 0.5f, -1.0f, 0.1f, -0.25f, 0.0f, -0.75f, -0.25f, 0.0f, 0.0f});
  ExpectFeatures(p, 0, 1, {0.75f, 0.25f, 0.0f, 0.2f, 0.25f, -0.25f, 0.25f, 0.25f, -0.25f, 1.0f});
  ExpectFeatures(p, 0, 2, {0.5f, 0.75f, 0.25f, 0.4f, 0.0f, 0.25f, 0.5f, 0.0f, 0.25f, 1.25f});
  ExpectFeatures(p, 0, 3, std::vector<float>(kNumPointFeatures, 0.0f));  // padding
  // Pillar 1: a single point is its own mean; centre (-3.5, -1.5, -1).
  ExpectFeatures(p, 1, 0, {-3.75f, -1.25f, -2.0f, 0.3f, 0, 0, 0, -0.25f, 0.25f, -1.0f});
  for (int slot = 1; slot < 4; ++slot) {
    ExpectFeatures(p, 1, slot, std::vector<float>(kNumPointFeatures, 0.0f));
  }
}

TEST(PillarizeTest, MaxPointsPerPillarKeepsTheFirstAndAveragesOnlyThose) {
  const Pillars p = Pillarize(HandCloud(), SmallGrid(2), PillarMode::kTest);
  ASSERT_EQ(p.num_pillars, 2);
  EXPECT_EQ(p.num_points, (std::vector<int32_t>{2, 1}));
  ASSERT_EQ(p.features.size(), 2u * 2 * kNumPointFeatures);
  // p3 dropped: mean of p0, p1 = (0.5, 0.375, -0.5).
  ExpectFeatures(p, 0, 0, {0.25f, 0.5f, -1.0f, 0.1f, -0.25f, 0.125f, -0.5f, -0.25f, 0.0f, 0.0f});
  ExpectFeatures(p, 0, 1, {0.75f, 0.25f, 0.0f, 0.2f, 0.25f, -0.125f, 0.5f, 0.25f, -0.25f, 1.0f});
}

TEST(PillarizeTest, MaxPillarsFollowsTheModeAndKeepsTheFirstPillars) {
  VoxelConfig c = SmallGrid(4);
  c.max_voxel_train = 1;
  c.max_voxel_test = 2;
  const Pillars train = Pillarize(HandCloud(), c, PillarMode::kTrain);
  ASSERT_EQ(train.num_pillars, 1);
  EXPECT_EQ(train.coords, (std::vector<int32_t>{2, 4}));
  EXPECT_EQ(train.num_points, (std::vector<int32_t>{3}));
  EXPECT_EQ(train.features.size(), 1u * 4 * kNumPointFeatures);
  EXPECT_EQ(Pillarize(HandCloud(), c, PillarMode::kTest).num_pillars, 2);
}

TEST(PillarizeTest, PointsOutsideTheGridAreIgnored) {
  PointCloud cloud = HandCloud();
  cloud.push_back({4.0f, 0.0f, 0.0f, 1.0f});   // x at the exclusive upper bound
  cloud.push_back({0.0f, -2.5f, 0.0f, 1.0f});  // y below the range
  cloud.push_back({0.0f, 0.0f, 1.0f, 1.0f});   // z at the upper bound
  cloud.push_back({std::numeric_limits<float>::quiet_NaN(), 0.0f, 0.0f, 1.0f});
  const Pillars p = Pillarize(cloud, SmallGrid(4), PillarMode::kTest);
  EXPECT_EQ(p.num_pillars, 2);
  EXPECT_EQ(p.num_points, (std::vector<int32_t>{3, 1}));
}

TEST(PillarizeTest, BoundaryCellsAndV2xRealGridSize) {
  VoxelConfig c;
  c.lidar_range = {-140.8, -40, -3, 140.8, 40, 1};
  c.voxel_size = {0.4, 0.4, 4};
  // (-140.8f itself lies just below -140.8 and is outside the range.)
  const PointCloud cloud{{-140.7f, -39.9f, -3.0f, 0.0f}, {140.79f, 39.99f, 0.99f, 0.0f}};
  const Pillars p = Pillarize(cloud, c, PillarMode::kTest);
  EXPECT_EQ(p.grid_w, 704);
  EXPECT_EQ(p.grid_h, 200);
  EXPECT_EQ(p.coords, (std::vector<int32_t>{0, 0, 199, 703}));
}

TEST(PillarizeTest, RepeatedCallsDoNotLeakState) {
  const VoxelConfig c = SmallGrid(4);
  const Pillars first = Pillarize(HandCloud(), c, PillarMode::kTest);
  // A different cloud that avoids cell (2, 4): if the shared grid index were not cleared
  // it would see stale pillars.
  const PointCloud other{{2.5f, -0.5f, 0.0f, 0.0f}, {-0.5f, 1.5f, 0.0f, 0.0f}};
  const Pillars second = Pillarize(other, c, PillarMode::kTest);
  EXPECT_EQ(second.num_pillars, 2);
  EXPECT_EQ(second.coords, (std::vector<int32_t>{1, 6, 3, 3}));
  EXPECT_EQ(second.num_points, (std::vector<int32_t>{1, 1}));
  // A different grid size in between, then the first cloud again.
  VoxelConfig coarse = c;
  coarse.voxel_size = {2, 2, 4};
  EXPECT_EQ(Pillarize(HandCloud(), coarse, PillarMode::kTest).grid_w, 4);
  const Pillars again = Pillarize(HandCloud(), c, PillarMode::kTest);
  EXPECT_EQ(again.coords, first.coords);
  EXPECT_EQ(again.num_points, first.num_points);
  EXPECT_EQ(again.features, first.features);
}

TEST(PillarizeTest, EmptyCloud) {
  const Pillars p = Pillarize({}, SmallGrid(4), PillarMode::kTest);
  EXPECT_EQ(p.num_pillars, 0);
  EXPECT_TRUE(p.features.empty());
  EXPECT_EQ(p.grid_w, 8);
}

TEST(CropPointsTest, RangeEgoBodyAndIntensity) {
  const PointCloud in{
      {-4.0f, 0.0f, 0.0f, 0.5f},   // kept: lower bound is inclusive
      {4.0f, 0.0f, 0.0f, 0.5f},    // dropped: upper bound exclusive
      {0.0f, 1.0f, -3.5f, 0.5f},   // dropped: below z range
      {0.0f, 0.0f, 0.0f, 0.5f},    // dropped: on the ego body
      {1.0f, 0.5f, 0.0f, 0.5f},    // dropped: body box edge is inclusive
      {1.01f, 0.0f, 0.0f, 0.5f},   // kept: just in front of the body
      {0.0f, -1.5f, 0.9f, 0.25f},  // kept
      {std::numeric_limits<float>::quiet_NaN(), 0.0f, 0.0f, 0.5f},  // dropped
  };
  VoxelConfig c = SmallGrid();
  const PointCloud out = CropPoints(in, c);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].x, -4.0f);
  EXPECT_EQ(out[1].x, 1.01f);
  EXPECT_EQ(out[2].y, -1.5f);
  EXPECT_EQ(out[2].intensity, 0.25f);

  c.use_intensity = false;
  const PointCloud zeroed = CropPoints(in, c);
  ASSERT_EQ(zeroed.size(), 3u);
  for (const Point& p : zeroed) EXPECT_EQ(p.intensity, 0.0f);
  EXPECT_EQ(zeroed[2].z, 0.9f);
}

// --- Collation.

AgentFrame MakeAgent(int id, double x, double y, double yaw, int num_points) {
  AgentFrame a;
  a.agent_id = id;
  a.lidar_pose = {x, y, 1.9, 0, yaw, 0};
  // One point per distinct pillar in row 0, so num_pillars identifies the agent.
  for (int i = 0; i < num_points; ++i) {
    a.points.push_back({-3.5f + static_cast<float>(i), -1.5f, 0.0f, 0.0f});
  }
  return a;
}

SceneFrame FiveAgents() {
  SceneFrame f;
  f.ego_id = 1;
  f.agents = {MakeAgent(1, 0, 0, 0, 1),      // ego
              MakeAgent(2, 50, 0, 90, 2),    // 50 m
              MakeAgent(3, 10, 10, -45, 3),  // 14.1 m
              MakeAgent(4, 0, 80, 180, 4),   // 80 m: out of range
              MakeAgent(5, -30, 0, 10, 5)};  // 30 m
  return f;
}

std::vector<int> Ids(const CollatedFrame& c) {
  std::vector<int> ids;
  for (const AgentInput& a : c.agents) ids.push_back(a.agent_id);
  return ids;
}

TEST(CollateFrameTest, EgoFirstThenNearestWithinRange) {
  auto c = CollateFrame(FiveAgents(), SmallGrid(), 70, 4, PillarMode::kTest);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Ids(*c), (std::vector<int>{1, 3, 5, 2}));
  for (const AgentInput& a : c->agents) {
    EXPECT_EQ(a.pillars.num_pillars, a.agent_id) << "agent " << a.agent_id;  // its own cloud
  }
  EXPECT_EQ(c->agents[1].lidar_pose.yaw, -45);
}

TEST(CollateFrameTest, MaxCavAndCommRangeCaps) {
  auto three = CollateFrame(FiveAgents(), SmallGrid(), 70, 3, PillarMode::kTest);
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(Ids(*three), (std::vector<int>{1, 3, 5}));
  auto alone = CollateFrame(FiveAgents(), SmallGrid(), 70, 1, PillarMode::kTest);
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ(Ids(*alone), (std::vector<int>{1}));
  auto near = CollateFrame(FiveAgents(), SmallGrid(), 20, 4, PillarMode::kTest);
  ASSERT_TRUE(near.ok());
  EXPECT_EQ(Ids(*near), (std::vector<int>{1, 3}));
  auto edge = CollateFrame(FiveAgents(), SmallGrid(), 50, 5, PillarMode::kTest);  // inclusive
  ASSERT_TRUE(edge.ok());
  EXPECT_EQ(Ids(*edge), (std::vector<int>{1, 3, 5, 2}));
  auto all = CollateFrame(FiveAgents(), SmallGrid(), 1000, 10, PillarMode::kTest);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Ids(*all), (std::vector<int>{1, 3, 5, 2, 4}));
}

TEST(CollateFrameTest, PairwiseTransformsAreConsistent) {
  auto c = CollateFrame(FiveAgents(), SmallGrid(), 70, 4, PillarMode::kTest);
  ASSERT_TRUE(c.ok());
  const size_t n = c->agents.size();
  ASSERT_EQ(c->pairwise.size(), n);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(c->pairwise[i].size(), n);
    for (size_t j = 0; j < n; ++j) {
      const Mat4 expected = RelativeTransform(c->agents[i].lidar_pose, c->agents[j].lidar_pose);
      const Mat4 round_trip = c->pairwise[i][j] * c->pairwise[j][i];
      for (int k = 0; k < 16; ++k) {
        EXPECT_NEAR(c->pairwise[i][j].m[k], expected.m[k], 1e-9);
        EXPECT_NEAR(round_trip.m[k], Mat4::Identity().m[k], 1e-9) << i << "," << j;
      }
      // Chaining through any third agent gives the direct transform.
      for (size_t k = 0; k < n; ++k) {
        const Mat4 chained = c->pairwise[k][j] * c->pairwise[i][k];
        for (int e = 0; e < 16; ++e) EXPECT_NEAR(chained.m[e], expected.m[e], 1e-9);
      }
    }
  }
  // Agent 3 (at (10, 10), yaw -45°) seen from the ego at the origin: its origin is at
  // (10, 10, 0) in the ego frame.
  const Vec3 o = TransformPoint(c->pairwise[1][0], {0, 0, 0});
  EXPECT_NEAR(o.x, 10, 1e-9);
  EXPECT_NEAR(o.y, 10, 1e-9);
  EXPECT_NEAR(o.z, 0, 1e-9);
}

TEST(CollateFrameTest, WarpIsNormalizedEgoToAgentTransform) {
  auto c = CollateFrame(FiveAgents(), SmallGrid(), 70, 4, PillarMode::kTest);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->warp_to_ego.size(), c->agents.size());
  const std::array<float, 6> identity{1, 0, 0, 0, 1, 0};
  EXPECT_EQ(c->warp_to_ego[0].a, identity);
  for (size_t k = 0; k < c->agents.size(); ++k) {
    const Mat4 ego_to_agent =
        RigidInverse(PoseToMatrix(c->agents[k].lidar_pose)) * PoseToMatrix(c->agents[0].lidar_pose);
    const AffineWarp expected = NormalizedAffine(ego_to_agent, 8, 4, 1.0);
    for (int e = 0; e < 6; ++e) EXPECT_NEAR(c->warp_to_ego[k].a[e], expected.a[e], 1e-6);
  }
  // Agent 3 is (10, 10) m from the ego, unrotated by -45°: the ego origin lies at
  // R(45°)·(-10, -10) = (0, -14.142) in its frame -> normalised (0, 2·(-14.142)/4).
  EXPECT_NEAR(c->warp_to_ego[1].a[2], 0.0, 1e-6);
  EXPECT_NEAR(c->warp_to_ego[1].a[5], -2 * 10 * std::sqrt(2.0) / 4, 1e-5);
}

TEST(CollateFrameTest, ModeSelectsThePillarCap) {
  VoxelConfig c = SmallGrid();
  c.max_voxel_train = 2;
  c.max_voxel_test = 5;
  auto train = CollateFrame(FiveAgents(), c, 70, 4, PillarMode::kTrain);
  auto test = CollateFrame(FiveAgents(), c, 70, 4, PillarMode::kTest);
  ASSERT_TRUE(train.ok());
  ASSERT_TRUE(test.ok());
  EXPECT_EQ(train->agents[2].pillars.num_pillars, 2);  // agent 5 has 5 pillars
  EXPECT_EQ(test->agents[2].pillars.num_pillars, 5);
}

TEST(CollateFrameTest, RejectsBadInput) {
  EXPECT_FALSE(CollateFrame(SceneFrame{}, SmallGrid(), 70, 4, PillarMode::kTest).ok());
  EXPECT_FALSE(CollateFrame(FiveAgents(), SmallGrid(), 70, 0, PillarMode::kTest).ok());
  EXPECT_FALSE(CollateFrame(FiveAgents(), SmallGrid(), -1, 4, PillarMode::kTest).ok());
  VoxelConfig shifted = SmallGrid();
  shifted.lidar_range = {0, -2, -3, 8, 2, 1};  // not symmetric: the warp would be wrong
  auto s = CollateFrame(FiveAgents(), shifted, 70, 4, PillarMode::kTest);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  VoxelConfig oblong = SmallGrid();
  oblong.voxel_size = {1, 0.5, 4};
  EXPECT_FALSE(CollateFrame(FiveAgents(), oblong, 70, 4, PillarMode::kTest).ok());
  SceneFrame nan_pose = FiveAgents();
  nan_pose.agents[2].lidar_pose.x = std::nan("");
  EXPECT_FALSE(CollateFrame(nan_pose, SmallGrid(), 70, 4, PillarMode::kTest).ok());
}

}  // namespace
}  // namespace qv2x
