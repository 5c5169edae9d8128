// Warping and occupancy-weighted fusion (SPEC §3, §5).
#include <torch/torch.h>

#include <cmath>

#include "core/geometry/transform.h"
#include "core/model/detector.h"
#include "core/model/ego_fusion.h"
#include "core/model/pyramid_fusion.h"
#include "gtest/gtest.h"
#include "tests/unit/model_test_util.h"

namespace qv2x {
namespace {

using testing::TinyConfig;

constexpr int kW = 64, kH = 32;  // pillar grid of the tiny preset
constexpr double kCell = 0.4;

torch::Tensor Warp(const Pose& ego, const Pose& agent) {
  return WarpTensor({NormalizedAffine(RelativeTransform(ego, agent), kW, kH, kCell)});
}

TEST(Warp, AgentAtEgoPoseIsIdentity) {
  const Pose pose{12.3, -4.5, 1.7, 0, 33.0, 0};
  const AffineWarp w = NormalizedAffine(RelativeTransform(pose, pose), kW, kH, kCell);
  const std::array<float, 6> id{1, 0, 0, 0, 1, 0};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(w.a[i], id[i], 1e-6) << i;

  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({1, 3, kH, kW});
  EXPECT_TRUE(torch::allclose(WarpToEgo(x, WarpTensor({w})), x, 1e-5, 1e-5));
  // The sampling path itself is the identity at pixel centres.
  const torch::Tensor nearly = torch::tensor({1.f, 0.f, 1e-12f, 0.f, 1.f, 0.f}).view({1, 2, 3});
  EXPECT_TRUE(torch::allclose(WarpToEgo(x, nearly), x, 1e-5, 1e-5));
  // And fusion of one unwarped agent returns its features.
  const torch::Tensor score = torch::rand({1, 1, kH, kW}) + 1e-4;
  EXPECT_TRUE(torch::allclose(WeightedFuse(x, score, {1}, nearly), x, 1e-5, 1e-5));
}

// Cell (row, col) centre in the sensor frame of a map with the tiny preset's range.
Vec3 CellCentre(int row, int col) {
  return {-12.8 + (col + 0.5) * kCell, -6.4 + (row + 0.5) * kCell, 0};
}

void ExpectHotCellLands(const Pose& ego, const Pose& agent, int row, int col) {
  // The world point under agent cell (row, col), seen from the ego.
  const Vec3 p = TransformPoint(RelativeTransform(agent, ego), CellCentre(row, col));
  const int ego_col = static_cast<int>(std::floor((p.x + 12.8) / kCell));
  const int ego_row = static_cast<int>(std::floor((p.y + 6.4) / kCell));
  ASSERT_TRUE(ego_col >= 0 && ego_col < kW && ego_row >= 0 && ego_row < kH);
  torch::Tensor x = torch::zeros({1, 1, kH, kW});
  x[0][0][row][col] = 1.f;
  const torch::Tensor y = WarpToEgo(x, Warp(ego, agent))[0][0];
  const int64_t arg = y.argmax().item<int64_t>();
  EXPECT_EQ(arg / kW, ego_row);
  EXPECT_EQ(arg % kW, ego_col);
  EXPECT_NEAR(y[ego_row][ego_col].item<float>(), 1.f, 1e-4);  // lands on a cell centre
  EXPECT_NEAR(y.sum().item<float>(), 1.f, 1e-4);
}

TEST(Warp, KnownWorldPointLandsAtPredictedEgoCell) {
  const Pose ego{100, 50, 0, 0, 0, 0};
  // Pure translation by whole cells.
  ExpectHotCellLands(ego, {102.0, 49.2, 0, 0, 0, 0}, 10, 20);
  // A quarter turn plus translation (the maps are not square: rows and columns swap roles).
  ExpectHotCellLands(ego, {100.4, 50.8, 0, 0, 90, 0}, 16, 30);
  // Rotated ego as well.
  ExpectHotCellLands({100, 50, 0, 0, 180, 0}, {98.4, 50, 0, 0, 90, 0}, 14, 35);
}

TEST(Fusion, OutOfViewCellsGetNoWeightAndSoftmaxAveragesEqualScores) {
  torch::manual_seed(1);
  const torch::Tensor ego = torch::randn({1, 4, kH, kW});
  const torch::Tensor other = torch::randn({1, 4, kH, kW});
  const torch::Tensor x = torch::cat({ego, other});
  const torch::Tensor score = torch::full({2, 1, kH, kW}, 0.5);
  // The other agent 1 km away sees nothing of the ego's grid: fused = ego.
  const torch::Tensor far = torch::cat({Warp({0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}),
                                        Warp({0, 0, 0, 0, 0, 0}, {1000, 0, 0, 0, 0, 0})});
  EXPECT_TRUE(torch::allclose(WeightedFuse(x, score, {2}, far), ego, 1e-6, 1e-6));
  // Same pose and equal scores: the plain mean.
  const torch::Tensor same = torch::eye(2, 3).expand({2, 2, 3});
  EXPECT_TRUE(torch::allclose(WeightedFuse(x, score, {2}, same), (ego + other) / 2, 1e-6, 1e-6));
  // Unequal scores: softmax over agents per pixel.
  torch::Tensor s2 = score.clone();
  s2[1].fill_(1.5);
  const double w1 = std::exp(1.5) / (std::exp(0.5) + std::exp(1.5));
  EXPECT_TRUE(
      torch::allclose(WeightedFuse(x, s2, {2}, same), ego * (1 - w1) + other * w1, 1e-5, 1e-5));
}

TEST(Fusion, OneAgentEqualsThatAgentTwice) {
  torch::manual_seed(2);
  StageConfig cfg = TinyConfig(false);
  auto fusion = MakeEgoFusion(cfg);
  ASSERT_TRUE(fusion.ok()) << fusion.status();
  (*fusion)->eval();
  torch::NoGradGuard g;
  const torch::Tensor f = torch::randn({1, 16, 16, 32}).relu();
  const torch::Tensor id = torch::eye(2, 3).unsqueeze(0);
  HeadOutput one = (*fusion)->forward(f, {1}, id);
  HeadOutput two = (*fusion)->forward(torch::cat({f, f}), {2}, id.expand({2, 2, 3}));
  EXPECT_TRUE(torch::allclose(one.cls, two.cls, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(one.reg, two.reg, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(one.dir, two.dir, 1e-5, 1e-5));
  // The message API with three copies (features here, indices in the detector test).
  AgentMessage m;
  m.features = f[0];
  m.warp = NormalizedAffine(Mat4::Identity(), kW, kH, kCell);
  auto three = (*fusion)->Fuse({m, m, m});
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_TRUE(torch::allclose(one.cls, three->cls, 1e-5, 1e-5));
}

TEST(Fusion, BatchOfFramesEqualsFramesAlone) {
  torch::manual_seed(3);
  StageConfig cfg = TinyConfig(false);
  auto fusion = MakeEgoFusion(cfg);
  ASSERT_TRUE(fusion.ok());
  (*fusion)->eval();
  torch::NoGradGuard g;
  const torch::Tensor a = torch::randn({2, 16, 16, 32}).relu();
  const torch::Tensor b = torch::randn({3, 16, 16, 32}).relu();
  const torch::Tensor wa = torch::cat({Warp({}, {}), Warp({}, {2, 1, 0, 0, 10, 0})});
  const torch::Tensor wb =
      torch::cat({Warp({}, {}), Warp({}, {-3, 0, 0, 0, 0, 0}), Warp({}, {1, 2, 0, 0, -30, 0})});
  HeadOutput alone_a = (*fusion)->forward(a, {2}, wa);
  HeadOutput alone_b = (*fusion)->forward(b, {3}, wb);
  HeadOutput both = (*fusion)->forward(torch::cat({a, b}), {2, 3}, torch::cat({wa, wb}));
  EXPECT_TRUE(torch::allclose(both.cls[0], alone_a.cls[0], 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(both.cls[1], alone_b.cls[0], 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(both.reg[1], alone_b.reg[0], 1e-4, 1e-5));
  EXPECT_EQ(both.occupancy[0].size(0), 5);
}

TEST(Fusion, RejectsMismatchedMessages) {
  StageConfig cfg = TinyConfig(false);
  auto fusion = MakeEgoFusion(cfg);
  ASSERT_TRUE(fusion.ok());
  (*fusion)->eval();
  AgentMessage a, b, c;
  a.features = torch::zeros({16, 16, 32});
  b.features = torch::zeros({16, 8, 32});
  c.indices = torch::zeros({1, 16, 32}, torch::kInt64);
  EXPECT_FALSE((*fusion)->Fuse({}).ok());
  EXPECT_FALSE((*fusion)->Fuse({a, b}).ok());
  auto no_codebook = (*fusion)->Fuse({a, c});
  EXPECT_FALSE(no_codebook.ok());
  AgentMessage wrong_channels;
  wrong_channels.features = torch::zeros({8, 16, 32});
  auto conv_error = (*fusion)->Fuse({wrong_channels});
  EXPECT_EQ(conv_error.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qv2x
