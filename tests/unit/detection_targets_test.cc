#include "core/detection/target_assigner.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <random>

#include "core/detection/box_coder.h"
#include "tests/unit/detection_test_util.h"

namespace qv2x {
namespace {

class DetectionTargetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = testing::DetectionTestConfig();
    auto g = MakeAnchorGrid(config_);
    ASSERT_TRUE(g.ok()) << g.status();
    grid_ = *std::move(g);
  }
  FrameTargets Assign(const std::vector<LabeledBox>& gt) {
    auto t = AssignTargets(grid_, gt, config_.model.dir_args);
    EXPECT_TRUE(t.ok()) << t.status();
    return *std::move(t);
  }
  Box3D AnchorBox(int64_t flat) const {
    const float* p = grid_.anchors.data_ptr<float>() + flat * 7;
    return {p[0], p[1], p[2], p[3], p[4], p[5], p[6]};
  }
  StageConfig config_;
  AnchorGrid grid_;
};

// The vehicle anchor (yaw 0) at row 3, column 5 sits at (-2.0, -0.4).
TEST_F(DetectionTargetsTest, BoxOnAnAnchorMakesItPositiveAndOtherClassesNegative) {
  const Box3D box{-2.0, -0.4, -1.78, 3.9, 1.6, 1.56, 0.0};
  const FrameTargets t = Assign({{ObjectClass::kVehicle, box}});
  const auto labels = t.labels.accessor<float, 3>();
  EXPECT_EQ(labels[3][5][0], 1);  // vehicle, yaw 0: IoU 1
  EXPECT_EQ(labels[3][5][1], 0);  // vehicle, yaw 90: IoU 2.56 / 9.92 = 0.26 < 0.45
  for (int a = 2; a < 6; ++a) EXPECT_EQ(labels[3][5][a], 0) << a;  // no pedestrian/truck GT
  // Same anchor, identical box: all-zero regression target; yaw 0 is direction bin 1.
  EXPECT_LT(t.reg_targets[3][5][0].abs().max().item<float>(), 1e-6f);
  EXPECT_EQ(t.dir_targets[3][5][0].item<int64_t>(), 1);
  EXPECT_EQ(t.dir_targets[3][5][1].item<int64_t>(), -1);
  // One column over (0.8 m): IoU (3.1 * 1.6) / (2 * 6.24 - 4.96) = 0.66 -> positive too;
  // two columns over: 2.3 * 1.6 / (12.48 - 3.68) = 0.418 -> negative.
  EXPECT_EQ(labels[3][6][0], 1);
  EXPECT_EQ(labels[3][4][0], 1);
  EXPECT_EQ(labels[3][7][0], 0);
  // One row over: (3.9 * 0.8) / (12.48 - 3.12) = 0.333 -> negative.
  EXPECT_EQ(labels[4][5][0], 0);
  EXPECT_EQ(t.num_positive, 3);
  EXPECT_EQ(t.labels.eq(1).sum().item<int64_t>(), 3);
}

TEST_F(DetectionTargetsTest, IgnoredBandBetweenThresholds) {
  // Shifted 0.8 m along x from the pedestrian anchor at (-2.0, -0.4)... use a vehicle shifted
  // so the nearest anchor's IoU is 0.5 (between 0.45 and 0.6): the box is made positive only by
  // the best-anchor rule, the next-best anchor with IoU in the band is ignored.
  // Vehicle box at x = -2.0 + d with IoU(d) = (3.9 - d) / (3.9 + d) = 0.5 -> d = 1.3.
  const Box3D box{-2.0 + 1.3, -0.4, -1.78, 3.9, 1.6, 1.56, 0.0};
  const FrameTargets t = Assign({{ObjectClass::kVehicle, box}});
  const auto labels = t.labels.accessor<float, 3>();
  // Column 6 (x = -1.2, d = 0.5): IoU 3.4/4.4 = 0.77 positive; column 7 (x = -0.4, d = 0.3):
  // 0.857 positive; column 5 (d = 1.3): exactly 0.5 -> ignored; column 8 (d = 1.1): 0.56 ignored.
  EXPECT_EQ(labels[3][6][0], 1);
  EXPECT_EQ(labels[3][7][0], 1);
  EXPECT_EQ(labels[3][5][0], -1);
  EXPECT_EQ(labels[3][8][0], -1);
  EXPECT_EQ(labels[3][4][0], 0);
  EXPECT_EQ(t.dir_targets[3][5][0].item<int64_t>(), -1);
}

TEST_F(DetectionTargetsTest, BestAnchorRuleKeepsALowOverlapBoxPositive) {
  // A vehicle at 45 degrees: its enclosing square (3.89 m a side) overlaps no vehicle anchor
  // by 0.45 or more, yet its best anchor must be positive.
  const Box3D box{0.3, 0.2, -1.6, 3.9, 1.6, 1.5, kPi / 4};
  const FrameTargets t = Assign({{ObjectClass::kVehicle, box}});
  ASSERT_EQ(t.num_positive, 1);
  // Brute force: the anchor of highest AxisAlignedBevIou among vehicle anchors.
  double best = 0;
  int64_t best_idx = -1;
  for (int64_t i = 0; i < grid_.num_anchors(); ++i) {
    if ((i % 6) / 2 != 0) continue;
    const double iou = AxisAlignedBevIou(AnchorBox(i), box);
    EXPECT_LT(iou, 0.45);
    if (iou > best) {
      best = iou;
      best_idx = i;
    }
  }
  ASSERT_GT(best, 0);
  const at::Tensor flat_labels = t.labels.reshape(-1);
  EXPECT_EQ(flat_labels[best_idx].item<float>(), 1);
  // Its target decodes back to the box; the heading bin is that of pi/4 (bin 0).
  const at::Tensor decoded = DecodeBoxes(t.reg_targets.reshape({-1, 7})[best_idx],
                                         grid_.anchors.reshape({-1, 7})[best_idx]);
  const double want[7] = {box.x, box.y, box.z, box.l, box.w, box.h, box.yaw};
  for (int k = 0; k < 7; ++k) EXPECT_NEAR(decoded[k].item<float>(), want[k], 1e-5) << k;
  EXPECT_EQ(t.dir_targets.reshape(-1)[best_idx].item<int64_t>(), 0);
}

TEST_F(DetectionTargetsTest, PerBoxAssignmentRecordsBestIouAndForcedMatches) {
  // A vehicle right on the anchor at (-2.0, -0.4): best IoU 1, three positives (see above).
  // A 45-degree vehicle: positive only through the forced best-anchor match. A box of a
  // class without anchors in a two-class grid is skipped.
  const Box3D on_anchor{-2.0, -0.4, -1.78, 3.9, 1.6, 1.56, 0.0};
  const Box3D diagonal{3.5, 1.2, -1.6, 3.9, 1.6, 1.5, kPi / 4};
  const FrameTargets t =
      Assign({{ObjectClass::kVehicle, on_anchor}, {ObjectClass::kVehicle, diagonal}});
  ASSERT_EQ(t.per_gt.size(), 2u);
  EXPECT_EQ(t.per_gt[0].anchor_class, 0);
  EXPECT_NEAR(t.per_gt[0].best_iou, 1.0, 1e-6);
  EXPECT_FALSE(t.per_gt[0].forced_only);
  EXPECT_EQ(t.per_gt[0].anchors.size(), 3u);
  EXPECT_TRUE(t.per_gt[1].forced_only);
  EXPECT_GT(t.per_gt[1].best_iou, 0.0);
  EXPECT_LT(t.per_gt[1].best_iou, 0.45);
  ASSERT_EQ(t.per_gt[1].anchors.size(), 1u);
  // Every positive anchor is listed under exactly one box, and all are positive.
  EXPECT_EQ(static_cast<int>(t.per_gt[0].anchors.size() + t.per_gt[1].anchors.size()),
            t.num_positive);
  const at::Tensor flat = t.labels.reshape(-1);
  for (const GtAssignment& g : t.per_gt) {
    for (int64_t idx : g.anchors) EXPECT_EQ(flat[idx].item<float>(), 1) << idx;
  }

  StageConfig two_classes = config_;
  two_classes.postprocess.classes.pop_back();  // no truck anchors
  auto grid = MakeAnchorGrid(two_classes);
  ASSERT_TRUE(grid.ok());
  auto skipped = AssignTargets(*grid, {{ObjectClass::kTruck, on_anchor}}, config_.model.dir_args);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(skipped->per_gt[0].anchor_class, -1);
  EXPECT_TRUE(skipped->per_gt[0].anchors.empty());
}

// Dense reference: every anchor against every box of its class with qv2x::AxisAlignedBevIou.
TEST_F(DetectionTargetsTest, MatchesDenseAxisAlignedIouOnRandomScenes) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> ux(-7.5, 7.5), uy(-4, 4), uyaw(-kPi, kPi),
      uscale(0.6, 1.5), ucls(0, 3);
  const double sizes[3][3] = {{3.9, 1.6, 1.56}, {0.8, 0.6, 1.73}, {8, 3, 3}};
  for (int scene = 0; scene < 6; ++scene) {
    std::vector<LabeledBox> gt;
    for (int g = 0; g < 12; ++g) {
      const int c = std::min(2, static_cast<int>(ucls(rng)));
      // Some boxes snap to anchor centres and yaws to exercise exact ties.
      const bool snap = g % 4 == 0;
      Box3D b{snap ? -6.0 + 0.8 * (g % 16) : ux(rng),
              snap ? -2.8 + 0.8 * (g % 8) : uy(rng),
              -1,
              sizes[c][0] * (snap ? 1 : uscale(rng)),
              sizes[c][1] * (snap ? 1 : uscale(rng)),
              sizes[c][2],
              snap ? 0.0 : uyaw(rng)};
      gt.push_back({static_cast<ObjectClass>(c), b});
    }
    const FrameTargets t = Assign(gt);
    const int64_t n = grid_.num_anchors();
    std::vector<double> best_iou(n, 0);
    std::vector<int> best_gt(n, -1);
    std::vector<int64_t> forced(gt.size(), -1);
    std::vector<double> forced_iou(gt.size(), 0);
    for (int64_t i = 0; i < n; ++i) {
      const int c = static_cast<int>(i % 6) / 2;
      for (size_t g = 0; g < gt.size(); ++g) {
        if (static_cast<int>(gt[g].cls) != c) continue;
        const double iou = AxisAlignedBevIou(AnchorBox(i), gt[g].box);
        if (iou > best_iou[i]) {
          best_iou[i] = iou;
          best_gt[i] = static_cast<int>(g);
        }
        if (iou > forced_iou[g]) {
          forced_iou[g] = iou;
          forced[g] = i;
        }
      }
    }
    std::vector<int> want(n), want_gt(n, -1);
    for (int64_t i = 0; i < n; ++i) {
      const int c = static_cast<int>(i % 6) / 2;
      want[i] = best_iou[i] >= grid_.pos_threshold[c]  ? 1
                : best_iou[i] < grid_.neg_threshold[c] ? 0
                                                       : -1;
      if (want[i] == 1) want_gt[i] = best_gt[i];
    }
    for (size_t g = 0; g < gt.size(); ++g) {
      if (forced[g] >= 0) {
        want[forced[g]] = 1;
        want_gt[forced[g]] = static_cast<int>(g);
      }
    }
    const at::Tensor labels = t.labels.reshape(-1);
    const at::Tensor reg = t.reg_targets.reshape({-1, 7});
    const at::Tensor dir = t.dir_targets.reshape(-1);
    int positives = 0;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(labels[i].item<float>(), want[i]) << "scene " << scene << " anchor " << i;
      if (want[i] != 1) {
        EXPECT_EQ(dir[i].item<int64_t>(), -1);
        continue;
      }
      ++positives;
      const Box3D& b = gt[want_gt[i]].box;
      const at::Tensor d = DecodeBoxes(reg[i], grid_.anchors.reshape({-1, 7})[i]);
      const double v[7] = {b.x, b.y, b.z, b.l, b.w, b.h, b.yaw};
      for (int k = 0; k < 7; ++k) ASSERT_NEAR(d[k].item<float>(), v[k], 1e-4) << i << " " << k;
      EXPECT_EQ(dir[i].item<int64_t>(), DirectionBin(b.yaw, config_.model.dir_args));
    }
    EXPECT_EQ(t.num_positive, positives);
    EXPECT_GT(positives, 0);
  }
}

TEST_F(DetectionTargetsTest, SkipsBoxesWithoutAnchorsOrSize) {
  StageConfig c = config_;
  c.postprocess.classes.resize(1);  // vehicle anchors only
  auto g = MakeAnchorGrid(c);
  ASSERT_TRUE(g.ok());
  auto t = AssignTargets(*g, {{ObjectClass::kPedestrian, {0, 0, -0.6, 0.8, 0.6, 1.7, 0}}},
                         c.model.dir_args);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->num_positive, 0);
  EXPECT_EQ(t->labels.eq(0).sum().item<int64_t>(), g->num_anchors());

  const FrameTargets d = Assign({{ObjectClass::kVehicle, {0, 0, -1, 0, 1.6, 1.5, 0}},
                                 {ObjectClass::kVehicle, {NAN, 0, -1, 3.9, 1.6, 1.5, 0}},
                                 {ObjectClass::kVehicle, {500, 900, -1, 3.9, 1.6, 1.5, 0}}});
  EXPECT_EQ(d.num_positive, 0);
  EXPECT_EQ(d.labels.eq(0).sum().item<int64_t>(), grid_.num_anchors());
}

TEST_F(DetectionTargetsTest, BoxesInAgentFrame) {
  GtObject o;
  o.cls = ObjectClass::kTruck;
  o.box = {10, 5, 0.5, 8, 3, 3, 0.2};
  Pose agent;
  agent.x = 10;
  agent.yaw = 90;
  const auto boxes = BoxesInAgentFrame({o}, agent);
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_EQ(boxes[0].cls, ObjectClass::kTruck);
  // 5 m north of an agent facing north is 5 m straight ahead.
  EXPECT_NEAR(boxes[0].box.x, 5, 1e-9);
  EXPECT_NEAR(boxes[0].box.y, 0, 1e-9);
  EXPECT_NEAR(boxes[0].box.yaw, 0.2 - kPi / 2, 1e-9);
}

TEST_F(DetectionTargetsTest, OccupancyLabelsMaxPoolKnownAnswer) {
  at::Tensor labels = torch::zeros({4, 4, 2});
  labels[0][1][1] = 1;
  labels[3][3][0] = 1;
  labels[2][0][0] = 1;
  labels[1][2][0] = -1;  // ignored is not occupied
  const auto levels = OccupancyLabels(labels, {1, 2, 4});
  ASSERT_EQ(levels.size(), 3u);
  const at::Tensor l0 = torch::zeros({1, 4, 4});
  l0[0][0][1] = 1;
  l0[0][3][3] = 1;
  l0[0][2][0] = 1;
  EXPECT_TRUE(torch::equal(levels[0], l0));
  EXPECT_TRUE(torch::equal(levels[1], torch::tensor({1.f, 0.f, 1.f, 1.f}).reshape({1, 2, 2})));
  EXPECT_TRUE(torch::equal(levels[2], torch::ones({1, 1, 1})));

  // Odd sizes round up like a stride-2 conv: 3 x 5 -> 2 x 3, the lone corner cell survives.
  at::Tensor odd = torch::zeros({3, 5, 1});
  odd[2][4][0] = 1;
  const auto odd_levels = OccupancyLabels(odd, {2});
  const at::Tensor want = torch::zeros({1, 2, 3});
  want[0][1][2] = 1;
  EXPECT_TRUE(torch::equal(odd_levels[0], want));
}

TEST_F(DetectionTargetsTest, AgentOccupancyLabelsFollowTheAssignment) {
  const std::vector<LabeledBox> gt = {
      {ObjectClass::kVehicle, {-2.0, -0.4, -1.78, 3.9, 1.6, 1.56, 0}},
      {ObjectClass::kPedestrian, {4.4, 2.0, -0.6, 0.8, 0.6, 1.7, 0}}};
  const std::vector<int> strides = OccupancyLevelStrides(config_);
  EXPECT_EQ(strides, (std::vector<int>{1, 2, 4}));
  auto occ = AgentOccupancyLabels(grid_, gt, strides);
  ASSERT_TRUE(occ.ok());
  const auto want = OccupancyLabels(Assign(gt).labels, strides);
  ASSERT_EQ(occ->size(), 3u);
  for (int l = 0; l < 3; ++l) EXPECT_TRUE(torch::equal((*occ)[l], want[l])) << l;
  EXPECT_EQ((*occ)[0].sizes(), (std::vector<int64_t>{1, 8, 16}));
  EXPECT_EQ((*occ)[2].sizes(), (std::vector<int64_t>{1, 2, 4}));
  // Vehicle positives at row 3, columns 4-6; pedestrian at (4.4, 2.0) = row 6, column 13.
  EXPECT_EQ((*occ)[0][0][3][5].item<float>(), 1);
  EXPECT_EQ((*occ)[0][0][6][13].item<float>(), 1);
  EXPECT_EQ((*occ)[1][0][3][6].item<float>(), 1);
  EXPECT_EQ((*occ)[0].sum().item<float>(), 4);
}

TEST_F(DetectionTargetsTest, StackTargetsBatchesFrames) {
  const FrameTargets a = Assign({{ObjectClass::kVehicle, {-2.0, -0.4, -1.78, 3.9, 1.6, 1.56, 0}}});
  const FrameTargets b = Assign({});
  auto s = StackTargets({a, b});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->labels.sizes(), (std::vector<int64_t>{2, 8, 16, 6}));
  EXPECT_EQ(s->reg_targets.sizes(), (std::vector<int64_t>{2, 8, 16, 6, 7}));
  EXPECT_EQ(s->dir_targets.sizes(), (std::vector<int64_t>{2, 8, 16, 6}));
  EXPECT_EQ(s->labels[1].eq(1).sum().item<int64_t>(), 0);
  FrameTargets bad = b;
  bad.labels = torch::zeros({2, 2, 6});
  EXPECT_FALSE(StackTargets({a, bad}).ok());
  EXPECT_FALSE(StackTargets({}).ok());
}

}  // namespace
}  // namespace qv2x
