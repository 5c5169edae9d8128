#include "core/detection/box_coder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/geometry/transform.h"

namespace qv2x {
namespace {

DirConfig TwoBins() { return DirConfig{kPi / 4, 2}; }

TEST(DetectionBoxCoderTest, EncodeKnownAnswer) {
  const at::Tensor anchor = torch::tensor({0.0, 0.0, -1.78, 3.9, 1.6, 1.56, 0.0}, torch::kFloat64);
  const at::Tensor box = torch::tensor({1.0, 2.0, -1.0, 4.0, 2.0, 1.5, 0.3}, torch::kFloat64);
  const at::Tensor t = EncodeBoxes(box, anchor);
  const double diag = std::sqrt(3.9 * 3.9 + 1.6 * 1.6);  // 4.2154...
  const auto v = t.accessor<double, 1>();
  EXPECT_NEAR(v[0], 1.0 / diag, 1e-12);
  EXPECT_NEAR(v[1], 2.0 / diag, 1e-12);
  EXPECT_NEAR(v[2], 0.78 / 1.56, 1e-12);
  EXPECT_NEAR(v[3], std::log(4.0 / 3.9), 1e-12);
  EXPECT_NEAR(v[4], std::log(2.0 / 1.6), 1e-12);
  EXPECT_NEAR(v[5], std::log(1.5 / 1.56), 1e-12);
  EXPECT_NEAR(v[6], 0.3, 1e-12);
}

TEST(DetectionBoxCoderTest, RoundTripRandomBoxes) {
  torch::manual_seed(7);
  const int64_t n = 500;
  at::Tensor anchors = torch::rand({n, 7}, torch::kFloat64);
  anchors.narrow(1, 0, 3).mul_(40).sub_(20);
  anchors.narrow(1, 3, 3).mul_(5).add_(0.3);
  anchors.narrow(1, 6, 1).mul_(2 * kPi).sub_(kPi);
  at::Tensor boxes = torch::rand({n, 7}, torch::kFloat64);
  boxes.narrow(1, 0, 3).mul_(40).sub_(20);
  boxes.narrow(1, 3, 3).mul_(8).add_(0.2);
  boxes.narrow(1, 6, 1).mul_(4 * kPi).sub_(2 * kPi);
  const at::Tensor back = DecodeBoxes(EncodeBoxes(boxes, anchors), anchors);
  EXPECT_LT((back - boxes).abs().max().item<double>(), 1e-12);
  // Float32, as in training: exact to float rounding.
  const at::Tensor a32 = anchors.to(torch::kFloat32), b32 = boxes.to(torch::kFloat32);
  const at::Tensor back32 = DecodeBoxes(EncodeBoxes(b32, a32), a32);
  EXPECT_LT((back32 - b32).abs().max().item<float>(), 1e-4f);
}

TEST(DetectionBoxCoderTest, LimitPeriodScalarAndTensor) {
  EXPECT_NEAR(LimitPeriod(3.5, 0.0, kPi), 3.5 - kPi, 1e-12);
  EXPECT_NEAR(LimitPeriod(-0.5, 0.0, kPi), kPi - 0.5, 1e-12);
  EXPECT_NEAR(LimitPeriod(4.0, 0.5, 2 * kPi), 4.0 - 2 * kPi, 1e-12);
  const at::Tensor t = LimitPeriod(torch::tensor({3.5, -0.5}, torch::kFloat64), 0.0, kPi);
  EXPECT_NEAR(t[0].item<double>(), 3.5 - kPi, 1e-12);
  EXPECT_NEAR(t[1].item<double>(), kPi - 0.5, 1e-12);
}

TEST(DetectionBoxCoderTest, DirectionBinsAroundTheOffset) {
  const DirConfig dir = TwoBins();
  const double e = 1e-6;
  // With offset pi/4: [pi/4, 5pi/4) is bin 0, the other half-turn bin 1.
  EXPECT_EQ(DirectionBin(kPi / 4 + e, dir), 0);
  EXPECT_EQ(DirectionBin(kPi / 4 - e, dir), 1);
  EXPECT_EQ(DirectionBin(kPi / 4, dir), 0);
  EXPECT_EQ(DirectionBin(0.0, dir), 1);
  EXPECT_EQ(DirectionBin(kPi / 2, dir), 0);
  EXPECT_EQ(DirectionBin(kPi, dir), 0);
  EXPECT_EQ(DirectionBin(-kPi, dir), 0);
  EXPECT_EQ(DirectionBin(5 * kPi / 4 - e, dir), 0);
  EXPECT_EQ(DirectionBin(5 * kPi / 4 + e, dir), 1);
  EXPECT_EQ(DirectionBin(-3 * kPi / 4 + e, dir), 1);
  EXPECT_EQ(DirectionBin(-kPi / 2, dir), 1);
  EXPECT_EQ(DirectionBin(kPi / 4 + 2 * kPi + e, dir), 0);  // periodic
  const std::vector<double> yaws = {kPi / 4 + e, kPi / 4 - e, 0.0, kPi, -kPi / 2, 2.0};
  const at::Tensor bins = DirectionBins(torch::tensor(yaws, torch::kFloat64), dir);
  ASSERT_EQ(bins.scalar_type(), torch::kInt64);
  for (size_t i = 0; i < yaws.size(); ++i) {
    EXPECT_EQ(bins[i].item<int64_t>(), DirectionBin(yaws[i], dir)) << yaws[i];
  }
  // Four bins, no offset: quarter turns.
  const DirConfig four{0.0, 4};
  EXPECT_EQ(DirectionBin(0.1, four), 0);
  EXPECT_EQ(DirectionBin(kPi / 2 + 0.1, four), 1);
  EXPECT_EQ(DirectionBin(kPi + 0.1, four), 2);
  EXPECT_EQ(DirectionBin(-0.1, four), 3);
}

TEST(DetectionBoxCoderTest, DirectionBinRecoversHeadingInAllQuadrants) {
  const DirConfig dir = TwoBins();
  // One heading per quadrant plus the bin edges; the regressed yaw may be off by a
  // half-turn (sin-difference cannot tell), the bin settles it.
  const double headings[] = {0.3, 2.0, -2.5, -1.0, kPi / 4 + 1e-4, -3 * kPi / 4 + 1e-4, 3.1};
  for (double theta : headings) {
    const int bin = DirectionBin(theta, dir);
    const double want = WrapAngle(theta);
    for (double regressed : {theta, theta + kPi, theta - kPi, theta + 2 * kPi}) {
      const double got = ApplyDirectionBin(regressed, bin, dir);
      EXPECT_NEAR(got, want, 1e-9) << "theta " << theta << " regressed " << regressed;
      EXPECT_GE(got, -kPi);
      EXPECT_LT(got, kPi);
      const at::Tensor t = ApplyDirectionBins(torch::tensor({regressed}, torch::kFloat64),
                                              torch::tensor({bin}, torch::kInt64), dir);
      EXPECT_NEAR(t[0].item<double>(), want, 1e-9);
    }
    // The other bin turns it around.
    EXPECT_NEAR(std::cos(ApplyDirectionBin(theta, 1 - bin, dir) - theta), -1.0, 1e-9);
  }
}

}  // namespace
}  // namespace qv2x
