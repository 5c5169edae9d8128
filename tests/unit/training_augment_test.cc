// Training augmentation keeps a frame consistent: after a mirror or a turn of the ego's
// view, the ego-frame ground truth and every agent's points seen from the ego move together,
// exactly as the augmentation says; dropout removes other agents, never the ego; draws are
// deterministic per key; `train_params.augment` is optional and range-checked.
#include "core/training/frame_augment.h"

#include <cmath>
#include <map>

#include "core/config/augment_config.h"
#include "core/config/model_config.h"
#include "core/training/frame_source.h"
#include "core/training/sample_builder.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

class AugmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = LoadStageConfig("configs/tiny/stage1.yaml");
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    cfg_ = *cfg;
    auto source = FrameSource::Open(cfg_.root_dir);
    ASSERT_TRUE(source.ok()) << source.status();
    auto frame = (*source)->Read(3);
    ASSERT_TRUE(frame.ok()) << frame.status();
    frame_ = *std::move(frame);
    ASSERT_GE(frame_.agents.size(), 3u);
  }
  std::vector<int> Ids(const SceneFrame& f) const {
    std::vector<int> ids;
    for (const AgentFrame& a : f.agents) ids.push_back(a.agent_id);
    return ids;
  }
  // Ground truth in the ego frame by object id; a wide range so no box leaves it.
  std::map<int, Box3D> EgoGt(const SceneFrame& f) const {
    StageConfig wide = cfg_;
    wide.postprocess.gt_range = {-500, -500, -10, 500, 500, 10};
    std::map<int, Box3D> out;
    for (const GtObject& o : EgoGroundTruthObjects(f, Ids(f), wide)) out[o.id] = o.box;
    return out;
  }
  // Agent k's first points in the ego frame.
  static std::vector<Vec3> PointsInEgo(const SceneFrame& f, size_t k, size_t n) {
    const Mat4 t = RelativeTransform(f.agents[k].lidar_pose, f.agents.front().lidar_pose);
    std::vector<Vec3> out;
    for (size_t i = 0; i < std::min(n, f.agents[k].points.size()); ++i) {
      const Point& p = f.agents[k].points[i];
      out.push_back(TransformPoint(t, {p.x, p.y, p.z}));
    }
    return out;
  }
  static double AngleDiff(double a, double b) { return std::abs(WrapAngle(a - b)); }

  StageConfig cfg_;
  SceneFrame frame_;
};

TEST_F(AugmentTest, MirrorReflectsEverythingSeenFromTheEgo) {
  // Give the ego some roll and pitch, as real data has: the mirror must still be exact.
  frame_.agents.front().lidar_pose.roll = 2.0;
  frame_.agents.front().lidar_pose.pitch = -1.5;
  const std::map<int, Box3D> before = EgoGt(frame_);
  const std::vector<Vec3> other_before = PointsInEgo(frame_, 1, 200);
  SceneFrame f = frame_;
  Augmentation a;
  a.mirror = true;
  ApplyAugmentation(a, &f);
  const std::map<int, Box3D> after = EgoGt(f);
  ASSERT_EQ(after.size(), before.size());
  ASSERT_FALSE(before.empty());
  for (const auto& [id, b] : before) {
    const Box3D& m = after.at(id);
    EXPECT_NEAR(m.x, b.x, 1e-9) << id;
    EXPECT_NEAR(m.y, -b.y, 1e-9) << id;
    EXPECT_NEAR(m.z, b.z, 1e-9) << id;
    EXPECT_LT(AngleDiff(m.yaw, -b.yaw), 1e-9) << id;
  }
  const std::vector<Vec3> other_after = PointsInEgo(f, 1, 200);
  ASSERT_EQ(other_after.size(), other_before.size());
  for (size_t i = 0; i < other_after.size(); ++i) {
    EXPECT_NEAR(other_after[i].x, other_before[i].x, 1e-4);
    EXPECT_NEAR(other_after[i].y, -other_before[i].y, 1e-4);
    EXPECT_NEAR(other_after[i].z, other_before[i].z, 1e-4);
  }
}

TEST_F(AugmentTest, TurnRotatesTheEgoViewOfObjectsAndOtherAgents) {
  frame_.agents.front().lidar_pose.roll = 1.0;
  frame_.agents.front().lidar_pose.pitch = 0.5;
  const double theta = 0.3;
  const std::map<int, Box3D> before = EgoGt(frame_);
  const std::vector<Vec3> other_before = PointsInEgo(frame_, 2, 200);
  const Point ego_p = frame_.agents.front().points.at(10);
  SceneFrame f = frame_;
  Augmentation a;
  a.turn_rad = theta;
  ApplyAugmentation(a, &f);
  const double c = std::cos(theta), s = std::sin(theta);
  const std::map<int, Box3D> after = EgoGt(f);
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [id, b] : before) {
    const Box3D& r = after.at(id);
    EXPECT_NEAR(r.x, c * b.x - s * b.y, 1e-6) << id;
    EXPECT_NEAR(r.y, s * b.x + c * b.y, 1e-6) << id;
    EXPECT_NEAR(r.z, b.z, 1e-6) << id;
    EXPECT_LT(AngleDiff(r.yaw, b.yaw + theta), 1e-6) << id;
  }
  const std::vector<Vec3> other_after = PointsInEgo(f, 2, 200);
  for (size_t i = 0; i < other_after.size(); ++i) {
    const Vec3& p = other_before[i];
    EXPECT_NEAR(other_after[i].x, c * p.x - s * p.y, 1e-4);
    EXPECT_NEAR(other_after[i].y, s * p.x + c * p.y, 1e-4);
  }
  // The ego's own points turn with it, about its sensor.
  const Point& q = f.agents.front().points.at(10);
  EXPECT_NEAR(q.x, c * ego_p.x - s * ego_p.y, 1e-4);
  EXPECT_NEAR(q.y, s * ego_p.x + c * ego_p.y, 1e-4);
  EXPECT_FLOAT_EQ(q.z, ego_p.z);
}

TEST_F(AugmentTest, DropoutKeepsTheEgoAndDrawsAreDeterministic) {
  AugmentConfig all;
  all.agent_dropout = 0.99;
  SceneFrame f = frame_;
  // 0.99 leaves some draws in; over many keys every other agent goes at least once, the ego
  // never.
  int dropped_total = 0;
  for (uint64_t key = 0; key < 50; ++key) {
    const Augmentation a = DrawAugmentation(all, frame_, key);
    for (int id : a.dropped_agents) EXPECT_NE(id, frame_.ego_id);
    dropped_total += static_cast<int>(a.dropped_agents.size());
  }
  EXPECT_GT(dropped_total, 40 * static_cast<int>(frame_.agents.size() - 1));
  Augmentation a;
  a.dropped_agents = {frame_.agents[1].agent_id, frame_.ego_id};  // the ego is ignored
  ApplyAugmentation(a, &f);
  ASSERT_EQ(f.agents.size(), frame_.agents.size() - 1);
  EXPECT_EQ(f.agents.front().agent_id, frame_.ego_id);

  AugmentConfig mixed;
  mixed.flip_probability = 0.5;
  mixed.rotate_deg = 10;
  mixed.agent_dropout = 0.25;
  int mirrored = 0;
  for (uint64_t key = 0; key < 1000; ++key) {
    const Augmentation x = DrawAugmentation(mixed, frame_, key);
    const Augmentation y = DrawAugmentation(mixed, frame_, key);
    EXPECT_EQ(x.mirror, y.mirror);
    EXPECT_EQ(x.turn_rad, y.turn_rad);
    EXPECT_EQ(x.dropped_agents, y.dropped_agents);
    EXPECT_LE(std::abs(x.turn_rad), DegToRad(10));
    mirrored += x.mirror;
  }
  EXPECT_NEAR(mirrored / 1000.0, 0.5, 0.05);
  // Nothing asked, nothing done.
  const Augmentation none = DrawAugmentation(AugmentConfig{}, frame_, 7);
  EXPECT_FALSE(none.mirror);
  EXPECT_EQ(none.turn_rad, 0);
  EXPECT_TRUE(none.dropped_agents.empty());
}

TEST_F(AugmentTest, SparseMessagesDrawnForOtherAgentsWithinTheRanges) {
  AugmentConfig c;
  c.sparse_probability = 1;
  c.sparse_span_m = {0.2, 0.8};
  c.sparse_dilation_cells = {1, 2};
  std::set<int> dilations;
  for (uint64_t key = 0; key < 100; ++key) {
    const Augmentation a = DrawAugmentation(c, frame_, key);
    ASSERT_EQ(a.sparse_agents.size(), frame_.agents.size() - 1);
    for (const auto& [id, sel] : a.sparse_agents) {
      EXPECT_NE(id, frame_.ego_id);
      EXPECT_GE(sel.min_height_span_m, 0.2);
      EXPECT_LE(sel.min_height_span_m, 0.8);
      dilations.insert(sel.dilation_cells);
    }
  }
  EXPECT_EQ(dilations, (std::set<int>{1, 2}));
  // The draws of the other augmentations do not move when sparse messages are added.
  AugmentConfig mixed;
  mixed.flip_probability = 0.5;
  mixed.rotate_deg = 10;
  AugmentConfig with = mixed;
  with.sparse_probability = 0.5;
  for (uint64_t key = 0; key < 50; ++key) {
    EXPECT_EQ(DrawAugmentation(mixed, frame_, key).turn_rad,
              DrawAugmentation(with, frame_, key).turn_rad);
  }
  // Marked on the collated frame, by agent id.
  const Augmentation a = DrawAugmentation(c, frame_, 3);
  CollatedFrame collated;
  for (const AgentFrame& af : frame_.agents) {
    AgentInput in;
    in.agent_id = af.agent_id;
    collated.agents.push_back(in);
  }
  MarkSparseAgents(a, &collated);
  for (const AgentInput& in : collated.agents) {
    EXPECT_EQ(in.sparse.has_value(), in.agent_id != frame_.ego_id) << in.agent_id;
  }
}

TEST(AugmentConfigTest, OptionalAndRangeChecked) {
  auto tiny = LoadStageConfig("configs/tiny/stage1.yaml");
  ASSERT_TRUE(tiny.ok());
  auto none = AugmentConfigOf(*tiny);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->Any());

  auto cpu =
      LoadStageConfig("configs/cpu/stage1.yaml", {"train_params.augment.flip_probability=0.25"});
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  auto a = AugmentConfigOf(*cpu);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_DOUBLE_EQ(a->flip_probability, 0.25);
  EXPECT_TRUE(a->Any());

  auto sparse = LoadStageConfig(
      "configs/cpu/stage3.yaml",
      {"train_params.augment.sparse_messages={probability: 0.5, min_height_span_m: [0, 1], "
       "dilation_cells: [0, 2]}"});
  ASSERT_TRUE(sparse.ok()) << sparse.status();
  auto sp = AugmentConfigOf(*sparse);
  ASSERT_TRUE(sp.ok()) << sp.status();
  EXPECT_DOUBLE_EQ(sp->sparse_probability, 0.5);
  EXPECT_EQ(sp->sparse_dilation_cells[1], 2);
  auto reversed = LoadStageConfig(
      "configs/cpu/stage3.yaml",
      {"train_params.augment.sparse_messages={probability: 0.5, min_height_span_m: [1, 0], "
       "dilation_cells: [0, 2]}"});
  ASSERT_FALSE(reversed.ok());
  EXPECT_NE(reversed.status().message().find("min_height_span_m"), std::string::npos)
      << reversed.status();

  for (const char* bad :
       {"train_params.augment.flip_probability=1.5", "train_params.augment.rotate_deg=-1",
        "train_params.augment.agent_dropout=1"}) {
    auto c = LoadStageConfig("configs/cpu/stage1.yaml", {bad});
    ASSERT_FALSE(c.ok()) << bad;
    const std::string key(bad, std::string(bad).find('='));
    EXPECT_NE(c.status().message().find(key), std::string::npos) << c.status();
  }
}

}  // namespace
}  // namespace qv2x
