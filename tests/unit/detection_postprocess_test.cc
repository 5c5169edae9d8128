#include "core/detection/postprocess.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/detection/box_coder.h"
#include "core/detection/nms.h"
#include "core/detection/target_assigner.h"
#include "tests/unit/detection_test_util.h"

namespace qv2x {
namespace {

TEST(DetectionNmsTest, OverlappingKeepsHigherScore) {
  const Box3D a{0, 0, 0, 3.9, 1.6, 1.5, 0}, b{0.3, 0.1, 0, 3.9, 1.6, 1.5, 0.1};
  EXPECT_EQ(RotatedBevNms({a, b}, {0.9f, 0.8f}, 0.15), (std::vector<int>{0}));
  EXPECT_EQ(RotatedBevNms({a, b}, {0.7f, 0.8f}, 0.15), (std::vector<int>{1}));
}

TEST(DetectionNmsTest, DisjointBoxesBothKeptInScoreOrder) {
  const Box3D a{0, 0, 0, 3.9, 1.6, 1.5, 0}, b{10, 0, 0, 3.9, 1.6, 1.5, 0};
  EXPECT_EQ(RotatedBevNms({a, b}, {0.3f, 0.8f}, 0.15), (std::vector<int>{1, 0}));
}

TEST(DetectionNmsTest, ThresholdIsStrict) {
  // Unit squares shifted by d along x: IoU = (1 - d) / (1 + d).
  const Box3D a{0, 0, 0, 1, 1, 1, 0};
  const Box3D low{0.8, 0, 0, 1, 1, 1, 0};   // IoU 0.111 <= 0.15: kept
  const Box3D high{0.6, 0, 0, 1, 1, 1, 0};  // IoU 0.25 > 0.15: suppressed
  EXPECT_EQ(RotatedBevNms({a, low}, {0.9f, 0.8f}, 0.15).size(), 2u);
  EXPECT_EQ(RotatedBevNms({a, high}, {0.9f, 0.8f}, 0.15).size(), 1u);
  // A chain: c overlaps b only; b is suppressed by a, so c survives.
  const Box3D b{0.6, 0, 0, 1, 1, 1, 0}, c{1.2, 0, 0, 1, 1, 1, 0};
  EXPECT_EQ(RotatedBevNms({a, b, c}, {0.9f, 0.8f, 0.7f}, 0.15), (std::vector<int>{0, 2}));
}

class DetectionPostprocessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // 25.6 m x 12.8 m: 32 x 16 cells of 0.8 m.
    config_ = testing::DetectionTestConfig(12.8, 6.4);
    auto g = MakeAnchorGrid(config_);
    ASSERT_TRUE(g.ok()) << g.status();
    grid_ = *std::move(g);
    const int A = 6, H = grid_.feature_h, W = grid_.feature_w;
    out_.cls = torch::full({1, A, H, W}, -10.f);
    out_.reg = torch::zeros({1, 7 * A, H, W});
    out_.dir = torch::zeros({1, 2 * A, H, W});
  }
  // Sets anchor (row, col, a) to score `logit` regressing to `box` with the bin of `bin_yaw`.
  void Plant(int row, int col, int a, float logit, const Box3D& box, double bin_yaw) {
    out_.cls[0][a][row][col] = logit;
    const at::Tensor anchor = grid_.anchors[row][col][a].to(torch::kFloat64);
    const at::Tensor t = EncodeBoxes(
        torch::tensor({box.x, box.y, box.z, box.l, box.w, box.h, box.yaw}, torch::kFloat64),
        anchor);
    for (int k = 0; k < 7; ++k) out_.reg[0][a * 7 + k][row][col] = t[k].item<double>();
    const int bin = DirectionBin(bin_yaw, config_.model.dir_args);
    out_.dir[0][a * 2 + bin][row][col] = 5.f;
  }
  absl::StatusOr<std::vector<Detection>> Run() {
    return PostProcess(grid_, out_.cls, out_.reg, out_.dir, config_.postprocess,
                       config_.model.dir_args);
  }
  StageConfig config_;
  AnchorGrid grid_;
  HeadOutputs out_;
};

TEST_F(DetectionPostprocessTest, DecodesHeadingsInAllFourQuadrants) {
  // Four vehicles, one per quadrant of heading, far apart; each planted on every anchor the
  // assigner makes positive for it (several per box, as a trained head would fire).
  const double yaws[4] = {0.3, 2.0, -2.5, -1.0};
  const double xs[4] = {-9, -3, 3, 9}, ys[4] = {-3, 3, -3, 3};
  std::vector<LabeledBox> gt;
  for (int i = 0; i < 4; ++i) {
    gt.push_back({ObjectClass::kVehicle, {xs[i], ys[i], -1.7, 4.2, 1.8, 1.5, yaws[i]}});
  }
  auto t = AssignTargets(grid_, gt, config_.model.dir_args);
  ASSERT_TRUE(t.ok());
  ASSERT_GE(t->num_positive, 4);
  // Targets straight into the head: cls logit 4 on positives, reg = targets, dir one-hot.
  const at::Tensor pos = t->labels.eq(1);  // [H, W, A]
  out_.cls = torch::full(pos.sizes(), -10.f)
                 .masked_fill(pos, 4.f)
                 .permute({2, 0, 1})
                 .unsqueeze(0)
                 .contiguous();
  out_.reg = t->reg_targets.reshape({grid_.feature_h, grid_.feature_w, 42})
                 .permute({2, 0, 1})
                 .unsqueeze(0)
                 .contiguous();
  // Flip every regressed yaw by π: sin-difference cannot tell, the bins must.
  out_.reg.view({1, 6, 7, grid_.feature_h, grid_.feature_w}).select(2, 6).add_(kPi);
  const at::Tensor onehot = torch::one_hot(t->dir_targets.clamp_min(0), 2).to(torch::kFloat32) * 5;
  out_.dir = onehot.reshape({grid_.feature_h, grid_.feature_w, 12})
                 .permute({2, 0, 1})
                 .unsqueeze(0)
                 .contiguous();

  auto dets = Run();
  ASSERT_TRUE(dets.ok()) << dets.status();
  ASSERT_EQ(dets->size(), 4u);
  for (const Detection& d : *dets) {
    EXPECT_EQ(d.cls, ObjectClass::kVehicle);
    EXPECT_NEAR(d.score, 1 / (1 + std::exp(-4.0)), 1e-6);
    int match = -1;
    for (int i = 0; i < 4; ++i) {
      if (std::hypot(d.box.x - xs[i], d.box.y - ys[i]) < 0.01) match = i;
    }
    ASSERT_GE(match, 0) << d.box.x << " " << d.box.y;
    EXPECT_NEAR(d.box.yaw, yaws[match], 1e-5) << match;
    EXPECT_NEAR(d.box.l, 4.2, 1e-5);
    EXPECT_NEAR(d.box.w, 1.8, 1e-5);
    EXPECT_NEAR(d.box.z, -1.7, 1e-5);
  }
}

TEST_F(DetectionPostprocessTest, ClassAgnosticSuppressionAcrossClasses) {
  // Vehicle anchor (a = 0) and pedestrian anchor (a = 2) in the same cell, the pedestrian
  // regressed to a 3.5 x 1.5 box: IoU with the vehicle's 3.9 x 1.6 = 0.84 > 0.15.
  const Box3D veh{0.4, 0.4, -1.7, 3.9, 1.6, 1.5, 0.1};
  const Box3D ped{0.4, 0.4, -0.6, 3.5, 1.5, 1.7, 0.1};
  Plant(8, 16, 0, 3.f, veh, veh.yaw);
  Plant(8, 16, 2, 2.f, ped, ped.yaw);
  auto dets = Run();
  ASSERT_TRUE(dets.ok());
  ASSERT_EQ(dets->size(), 1u);
  EXPECT_EQ((*dets)[0].cls, ObjectClass::kVehicle);
  // Scores swapped: the pedestrian wins.
  out_.cls[0][0][8][16] = 1.f;
  dets = Run();
  ASSERT_TRUE(dets.ok());
  ASSERT_EQ(dets->size(), 1u);
  EXPECT_EQ((*dets)[0].cls, ObjectClass::kPedestrian);
  EXPECT_NEAR((*dets)[0].box.l, 3.5, 1e-5);
}

TEST_F(DetectionPostprocessTest, ClassVectorHeadNamesTheBoxByItsLikeliestClass) {
  // cls_head class_vector: C logits per anchor; the score is the likeliest class's and the
  // box takes that class, whatever its anchor's class.
  const Box3D veh{0.4, 0.4, -1.7, 3.9, 1.6, 1.5, 0.1};
  Plant(8, 16, 0, 3.f, veh, veh.yaw);
  const int A = grid_.anchors_per_cell(), C = static_cast<int>(grid_.class_ids.size());
  ASSERT_EQ(C, 3);
  at::Tensor vec = torch::full({1, A * C, grid_.feature_h, grid_.feature_w}, -10.f);
  vec[0][0 * C + 2][8][16] = 1.5f;  // anchor 0 (a vehicle anchor) says "class 2"
  vec[0][0 * C + 0][8][16] = 0.5f;
  out_.cls = vec;
  auto dets = Run();
  ASSERT_TRUE(dets.ok()) << dets.status();
  ASSERT_EQ(dets->size(), 1u);
  EXPECT_EQ((*dets)[0].cls, grid_.class_ids[2]);
  EXPECT_NEAR((*dets)[0].score, 1.0 / (1.0 + std::exp(-1.5)), 1e-6);
  EXPECT_NEAR((*dets)[0].box.l, 3.9, 1e-5);  // the anchor's regression, as before
  // Neither A nor A·C channels: refused.
  out_.cls = torch::zeros({1, A * 2, grid_.feature_h, grid_.feature_w});
  EXPECT_EQ(Run().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DetectionPostprocessTest, ScoreThresholdTopKAndOrder) {
  // Five disjoint pedestrians with scores σ(-1.5) = 0.18 (below 0.2) and four above.
  const float logits[5] = {-1.5f, 0.f, 1.f, 2.f, 3.f};
  for (int i = 0; i < 5; ++i) {
    const Box3D b{-10.0 + 4 * i, 0.4, -0.6, 0.8, 0.6, 1.7, 0.5};
    Plant(8, 3 + 5 * i, 2, logits[i], b, b.yaw);
  }
  auto dets = Run();
  ASSERT_TRUE(dets.ok());
  ASSERT_EQ(dets->size(), 4u);
  for (size_t i = 0; i + 1 < dets->size(); ++i) EXPECT_GT((*dets)[i].score, (*dets)[i + 1].score);
  EXPECT_NEAR(dets->front().box.x, 6.0, 1e-5);
  EXPECT_EQ(dets->front().cls, ObjectClass::kPedestrian);
  config_.postprocess.max_num = 2;  // top 2 by score before NMS
  dets = Run();
  ASSERT_TRUE(dets.ok());
  ASSERT_EQ(dets->size(), 2u);
  EXPECT_NEAR((*dets)[0].score, 1 / (1 + std::exp(-3.0)), 1e-6);
  EXPECT_NEAR((*dets)[1].score, 1 / (1 + std::exp(-2.0)), 1e-6);
}

TEST_F(DetectionPostprocessTest, RangeFilterKeepsOnlyBoxesFullyInside) {
  config_.postprocess.gt_range = {-8, -4, -3, 8, 4, 1};
  const Box3D inside{0.4, 0.4, -1.7, 3.9, 1.6, 1.5, 0};
  const Box3D straddling{7.0, 0.4, -1.7, 3.9, 1.6, 1.5, 0};  // centre in, front corners at 8.95
  const Box3D outside{10.0, 0.4, -1.7, 3.9, 1.6, 1.5, 0};
  Plant(8, 16, 0, 2.f, inside, 0);
  Plant(8, 24, 0, 2.f, straddling, 0);
  Plant(8, 28, 0, 2.f, outside, 0);
  auto dets = Run();
  ASSERT_TRUE(dets.ok());
  ASSERT_EQ(dets->size(), 1u);
  EXPECT_NEAR((*dets)[0].box.x, 0.4, 1e-5);
  EXPECT_TRUE(BevInsideRange(inside, config_.postprocess.gt_range));
  EXPECT_FALSE(BevInsideRange(straddling, config_.postprocess.gt_range));
}

TEST_F(DetectionPostprocessTest, DropsNonFiniteAndBatches) {
  Plant(8, 16, 0, 2.f, {0.4, 0.4, -1.7, 3.9, 1.6, 1.5, 0}, 0);
  Plant(2, 4, 0, 2.f, {-9.2, -4.4, -1.7, 3.9, 1.6, 1.5, 0}, 0);
  out_.reg[0][3][2][4] = 1e6f;  // exp overflows: l = inf
  auto dets = Run();
  ASSERT_TRUE(dets.ok());
  EXPECT_EQ(dets->size(), 1u);

  HeadOutputs batch{torch::cat({out_.cls, torch::full_like(out_.cls, -10.f)}),
                    torch::cat({out_.reg, out_.reg}), torch::cat({out_.dir, out_.dir})};
  auto frames = PostProcessBatch(grid_, batch, config_.postprocess, config_.model.dir_args);
  ASSERT_TRUE(frames.ok());
  ASSERT_EQ(frames->size(), 2u);
  EXPECT_EQ((*frames)[0].size(), 1u);
  EXPECT_TRUE((*frames)[1].empty());
}

TEST_F(DetectionPostprocessTest, RejectsBadInput) {
  auto bad = PostProcess(grid_, out_.cls, out_.reg.narrow(1, 0, 40), out_.dir, config_.postprocess,
                         config_.model.dir_args);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  config_.postprocess.gt_range = {};
  auto empty_range = Run();
  ASSERT_FALSE(empty_range.ok());
  EXPECT_NE(empty_range.status().message().find("gt_range"), std::string::npos);
}

}  // namespace
}  // namespace qv2x
