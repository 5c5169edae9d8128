#include "core/detection/loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/geometry/transform.h"

namespace qv2x {
namespace {

// Hand-computed (α 0.25, γ 2): logit 0 with target 1 -> 0.25 · 0.5² · ln 2; logit 2 with
// target 0 -> 0.75 · σ(2)² · (2 + ln(1 + e⁻²)).
constexpr double kFocalPos0 = 0.04332169878499658;
constexpr double kFocalNeg2 = 1.2375586345660565;
// Logit 0 with target 0: 0.75 · 0.5² · ln 2.
constexpr double kFocalNeg0 = 0.12996509635498975;

LossConfig Config() { return LossConfig{}; }  // SPEC §3 defaults
DirConfig Dir() { return DirConfig{0.7853981633974483, 2}; }

// One frame, one cell, two anchors.
struct TinyCase {
  HeadOutputs out;
  BatchTargets targets;
};
TinyCase MakeTiny(std::vector<float> cls_logits, std::vector<float> labels) {
  TinyCase c;
  c.out.cls = torch::tensor(cls_logits).reshape({1, 2, 1, 1});
  // Anchor 0 regresses with residuals 0.05 (< β) and 0.5 (> β); anchor 1 is far off but
  // never positive in these cases.
  std::vector<float> reg(14, 0.f);
  reg[0] = 0.05f;
  reg[1] = 0.5f;
  for (int k = 7; k < 14; ++k) reg[k] = 9.f;
  c.out.reg = torch::tensor(reg).reshape({1, 14, 1, 1});
  c.out.dir = torch::tensor({0.f, std::log(3.f), 5.f, -5.f}).reshape({1, 4, 1, 1});
  c.targets.labels = torch::tensor(labels).reshape({1, 1, 1, 2});
  c.targets.reg_targets = torch::zeros({1, 1, 1, 2, 7});
  c.targets.dir_targets = torch::tensor({int64_t{1}, int64_t{-1}}).reshape({1, 1, 1, 2});
  return c;
}

TEST(DetectionLossTest, FocalLossHandComputedTwoAnchors) {
  const at::Tensor l = SigmoidFocalLoss(torch::tensor({0.0, 2.0, 0.0}, torch::kFloat64),
                                        torch::tensor({1.0, 0.0, 0.0}, torch::kFloat64), 0.25, 2.0);
  EXPECT_NEAR(l[0].item<double>(), kFocalPos0, 1e-12);
  EXPECT_NEAR(l[1].item<double>(), kFocalNeg2, 1e-12);
  EXPECT_NEAR(l[2].item<double>(), kFocalNeg0, 1e-12);
  // Stable for large logits: a confident correct answer costs ~0, a confident wrong one ~α·x.
  const at::Tensor big = SigmoidFocalLoss(torch::tensor({80.0, -80.0}, torch::kFloat64),
                                          torch::tensor({1.0, 1.0}, torch::kFloat64), 0.25, 2.0);
  EXPECT_NEAR(big[0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(big[1].item<double>(), 0.25 * 80.0, 1e-9);
}

TEST(DetectionLossTest, SmoothL1BothSidesOfBeta) {
  const double beta = 1.0 / 9.0;
  const at::Tensor l = SmoothL1(torch::tensor({0.05, 0.5, -0.5, 0.0}, torch::kFloat64),
                                torch::zeros({4}, torch::kFloat64), beta);
  EXPECT_NEAR(l[0].item<double>(), 0.5 * 0.05 * 0.05 / beta, 1e-12);  // 0.01125
  EXPECT_NEAR(l[1].item<double>(), 0.5 - 0.5 * beta, 1e-12);          // 0.4444
  EXPECT_NEAR(l[2].item<double>(), 0.5 - 0.5 * beta, 1e-12);
  EXPECT_NEAR(l[3].item<double>(), 0.0, 1e-12);
  // Continuous at |d| = β.
  const at::Tensor edge = SmoothL1(torch::tensor({beta - 1e-9, beta + 1e-9}, torch::kFloat64),
                                   torch::zeros({2}, torch::kFloat64), beta);
  EXPECT_NEAR(edge[0].item<double>(), edge[1].item<double>(), 1e-8);
}

TEST(DetectionLossTest, CombinedLossHandComputed) {
  TinyCase c = MakeTiny({0.f, 2.f}, {1.f, 0.f});
  auto terms = DetectionLoss(Config(), Dir())(c.out, c.targets);
  ASSERT_TRUE(terms.ok()) << terms.status();
  const double cls = kFocalPos0 + kFocalNeg2;              // one positive
  const double reg = 2.0 * (0.01125 + (0.5 - 0.5 / 9.0));  // weight 2
  const double dir = 0.2 * -std::log(0.75);                // softmax(0, ln 3)[1]
  EXPECT_NEAR(terms->cls.item<float>(), cls, 1e-6);
  EXPECT_NEAR(terms->reg.item<float>(), reg, 1e-6);
  EXPECT_NEAR(terms->dir.item<float>(), dir, 1e-6);
  EXPECT_NEAR(terms->total.item<float>(), cls + reg + dir, 1e-6);
  EXPECT_FALSE(terms->occ.defined());

  // The ignored anchor drops out of the classification loss.
  c = MakeTiny({0.f, 2.f}, {1.f, -1.f});
  terms = DetectionLoss(Config(), Dir())(c.out, c.targets);
  ASSERT_TRUE(terms.ok());
  EXPECT_NEAR(terms->cls.item<float>(), kFocalPos0, 1e-6);

  // No positive: normaliser clamps to 1, regression and direction vanish.
  c = MakeTiny({0.f, 2.f}, {0.f, 0.f});
  terms = DetectionLoss(Config(), Dir())(c.out, c.targets);
  ASSERT_TRUE(terms.ok());
  EXPECT_NEAR(terms->cls.item<float>(), kFocalNeg0 + kFocalNeg2, 1e-6);
  EXPECT_NEAR(terms->reg.item<float>(), 0.0, 1e-9);
  EXPECT_NEAR(terms->dir.item<float>(), 0.0, 1e-9);
}

TEST(DetectionLossTest, ClassVectorHeadTargetsTheAnchorsOwnClass) {
  // Two anchors, one per class, a 2-way class vector each: anchor 0 (class 0) is positive,
  // so its target is [1, 0]; anchor 1's is [0, 0]. Logits (a0c0, a0c1, a1c0, a1c1).
  TinyCase c = MakeTiny({0.f, 2.f}, {1.f, 0.f});
  c.out.cls = torch::tensor({0.f, 0.f, 2.f, 0.f}).reshape({1, 4, 1, 1});
  const DetectionLoss loss(Config(), Dir());
  auto terms = loss(c.out, c.targets);
  ASSERT_TRUE(terms.ok()) << terms.status();
  EXPECT_NEAR(terms->cls.item<float>(), kFocalPos0 + kFocalNeg0 + kFocalNeg2 + kFocalNeg0, 1e-6);
  // The per-class split sums each anchor's whole class vector.
  auto by_class = loss.ByAnchorClass(c.out, c.targets, 1);
  ASSERT_TRUE(by_class.ok()) << by_class.status();
  EXPECT_NEAR((*by_class)[0].cls.item<float>(), kFocalPos0 + kFocalNeg0, 1e-6);
  EXPECT_NEAR((*by_class)[1].cls.item<float>(), kFocalNeg2 + kFocalNeg0, 1e-6);
}

TEST(DetectionLossTest, ByAnchorClassSplitsEachTermAndAddsUpToIt) {
  // Two anchors per cell, one per class: anchor 0 (class 0) positive, anchor 1 (class 1)
  // negative. Class 1 gets only its negative's focal loss, normalised by the frame's one
  // positive like the whole.
  const TinyCase c = MakeTiny({0.f, 2.f}, {1.f, 0.f});
  const DetectionLoss loss(Config(), Dir());
  auto by_class = loss.ByAnchorClass(c.out, c.targets, /*anchors_per_class=*/1);
  ASSERT_TRUE(by_class.ok()) << by_class.status();
  ASSERT_EQ(by_class->size(), 2u);
  const LossTerms& first = (*by_class)[0];
  const LossTerms& second = (*by_class)[1];
  EXPECT_NEAR(first.cls.item<float>(), kFocalPos0, 1e-6);
  EXPECT_NEAR(first.reg.item<float>(), 2.0 * (0.01125 + (0.5 - 0.5 / 9.0)), 1e-6);
  EXPECT_NEAR(first.dir.item<float>(), 0.2 * -std::log(0.75), 1e-6);
  EXPECT_NEAR(second.cls.item<float>(), kFocalNeg2, 1e-6);
  EXPECT_NEAR(second.reg.item<float>(), 0.0, 1e-9);
  EXPECT_NEAR(second.dir.item<float>(), 0.0, 1e-9);
  auto whole = loss(c.out, c.targets);
  ASSERT_TRUE(whole.ok());
  EXPECT_NEAR(first.total.item<float>() + second.total.item<float>(), whole->total.item<float>(),
              1e-6);

  // Both anchors in one class: the same as the whole.
  auto one = loss.ByAnchorClass(c.out, c.targets, 2);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_NEAR((*one)[0].cls.item<float>(), whole->cls.item<float>(), 1e-6);
  // Anchors that do not split into whole classes are refused.
  EXPECT_FALSE(loss.ByAnchorClass(c.out, c.targets, 3).ok());
}

TEST(DetectionLossTest, BatchNormalisesPerFrameThenAverages) {
  const TinyCase a = MakeTiny({0.f, 2.f}, {1.f, 0.f});
  TinyCase b = MakeTiny({0.f, 0.f}, {1.f, 1.f});  // two positives: each term halves
  b.targets.dir_targets = torch::tensor({int64_t{1}, int64_t{1}}).reshape({1, 1, 1, 2});
  const DetectionLoss loss(Config(), Dir());
  auto la = loss(a.out, a.targets), lb = loss(b.out, b.targets);
  ASSERT_TRUE(la.ok() && lb.ok());
  EXPECT_NEAR(lb->cls.item<float>(), kFocalPos0, 1e-6);  // (2 · focal) / 2

  HeadOutputs both{torch::cat({a.out.cls, b.out.cls}), torch::cat({a.out.reg, b.out.reg}),
                   torch::cat({a.out.dir, b.out.dir})};
  BatchTargets tb{torch::cat({a.targets.labels, b.targets.labels}),
                  torch::cat({a.targets.reg_targets, b.targets.reg_targets}),
                  torch::cat({a.targets.dir_targets, b.targets.dir_targets})};
  auto lab = loss(both, tb);
  ASSERT_TRUE(lab.ok());
  for (auto [batch, one, two] :
       {std::tuple{lab->cls, la->cls, lb->cls}, std::tuple{lab->reg, la->reg, lb->reg},
        std::tuple{lab->dir, la->dir, lb->dir}, std::tuple{lab->total, la->total, lb->total}}) {
    const double mean = (one.item<double>() + two.item<double>()) / 2;
    EXPECT_NEAR(batch.item<double>(), mean, 1e-6 * std::max(1.0, mean));  // float32 sums
  }
}

TEST(DetectionLossTest, SinDifferenceMakesHalfTurnEqualAndDirectionSeparates) {
  const double theta = 0.3;
  auto [p1, t1] = AddSinDifference(torch::tensor({0., 0., 0., 0., 0., 0., theta}, torch::kFloat64),
                                   torch::zeros({7}, torch::kFloat64));
  auto [p2, t2] =
      AddSinDifference(torch::tensor({0., 0., 0., 0., 0., 0., theta + kPi}, torch::kFloat64),
                       torch::zeros({7}, torch::kFloat64));
  EXPECT_NEAR((p1 - t1)[6].item<double>(), std::sin(theta), 1e-12);
  EXPECT_NEAR(std::abs((p2 - t2)[6].item<double>()), std::sin(theta), 1e-12);

  // Through the full loss: targets θ and θ + π against the same prediction θ.
  TinyCase c = MakeTiny({0.f, 2.f}, {1.f, 0.f});
  c.out.reg.zero_();
  c.out.reg[0][6][0][0] = static_cast<float>(theta);
  c.out.dir = torch::tensor({-2.f, 2.f, 0.f, 0.f}).reshape({1, 4, 1, 1});  // favours bin 1
  const DetectionLoss loss(Config(), Dir());
  BatchTargets same = c.targets, flipped = c.targets;
  same.reg_targets = torch::zeros({1, 1, 1, 2, 7});
  same.reg_targets[0][0][0][0][6] = static_cast<float>(theta);
  same.dir_targets = torch::tensor({int64_t{1}, int64_t{-1}}).reshape({1, 1, 1, 2});
  flipped.reg_targets = same.reg_targets.clone();
  flipped.reg_targets[0][0][0][0][6] = static_cast<float>(theta + kPi);
  flipped.dir_targets = torch::tensor({int64_t{0}, int64_t{-1}}).reshape({1, 1, 1, 2});
  auto ls = loss(c.out, same), lf = loss(c.out, flipped);
  ASSERT_TRUE(ls.ok() && lf.ok());
  EXPECT_NEAR(ls->reg.item<float>(), 0.0, 1e-6);
  EXPECT_NEAR(lf->reg.item<float>(), 0.0, 1e-6);  // sin(θ - (θ + π)) = 0 as well
  EXPECT_NEAR(ls->dir.item<float>(), 0.2 * std::log1p(std::exp(-4.0)), 1e-6);
  EXPECT_NEAR(lf->dir.item<float>(), 0.2 * (4.0 + std::log1p(std::exp(-4.0))), 1e-5);
}

TEST(DetectionLossTest, OccupancyLossPerLevelWeights) {
  const DetectionLoss loss(Config(), Dir());  // pyramid weights 0.4, 0.2, 0.1
  OccupancyInputs occ;
  occ.logits = {torch::tensor({0.f, 2.f}).reshape({1, 1, 1, 2}), torch::zeros({1, 1, 1, 1})};
  occ.labels = {torch::tensor({1.f, 0.f}).reshape({1, 1, 1, 2}), torch::zeros({1, 1, 1, 1})};
  auto l = loss.Occupancy(occ);
  ASSERT_TRUE(l.ok()) << l.status();
  const double want = 0.4 * (kFocalPos0 + kFocalNeg2) + 0.2 * kFocalNeg0;
  EXPECT_NEAR(l->item<float>(), want, 1e-6);

  // Two identical agents: averaged over agents, same value.
  OccupancyInputs two;
  for (size_t i = 0; i < 2; ++i) {
    two.logits.push_back(torch::cat({occ.logits[i], occ.logits[i]}));
    two.labels.push_back(torch::cat({occ.labels[i], occ.labels[i]}));
  }
  auto l2 = loss.Occupancy(two);
  ASSERT_TRUE(l2.ok());
  EXPECT_NEAR(l2->item<float>(), want, 1e-6);

  // Added to the detection total when given.
  const TinyCase c = MakeTiny({0.f, 2.f}, {1.f, 0.f});
  auto terms = loss(c.out, c.targets, &occ);
  ASSERT_TRUE(terms.ok());
  EXPECT_NEAR(terms->occ.item<float>(), want, 1e-6);
  EXPECT_NEAR(terms->total.item<float>(),
              (terms->cls + terms->reg + terms->dir).item<float>() + want, 1e-6);

  // More levels than weights, or mismatched labels, are errors.
  OccupancyInputs four = occ;
  four.logits.resize(4, torch::zeros({1, 1, 1, 1}));
  four.labels.resize(4, torch::zeros({1, 1, 1, 1}));
  EXPECT_FALSE(loss.Occupancy(four).ok());
  OccupancyInputs bad = occ;
  bad.labels[1] = torch::zeros({1, 1, 2, 2});
  EXPECT_FALSE(loss.Occupancy(bad).ok());
}

TEST(DetectionLossTest, GradientsReachTheHeads) {
  TinyCase c = MakeTiny({0.f, 2.f}, {1.f, 0.f});
  c.out.cls.requires_grad_(true);
  c.out.reg.requires_grad_(true);
  c.out.dir.requires_grad_(true);
  auto terms = DetectionLoss(Config(), Dir())(c.out, c.targets);
  ASSERT_TRUE(terms.ok());
  terms->total.backward();
  // Positive anchor with p = 0.5 is pushed up, the confident negative down.
  EXPECT_LT(c.out.cls.grad()[0][0][0][0].item<float>(), 0);
  EXPECT_GT(c.out.cls.grad()[0][1][0][0].item<float>(), 0);
  // Only the positive anchor's regression channels get a gradient.
  EXPECT_GT(c.out.reg.grad()[0][0][0][0].item<float>(), 0);
  EXPECT_EQ(c.out.reg.grad().narrow(1, 7, 7).abs().sum().item<float>(), 0);
  EXPECT_TRUE(torch::isfinite(c.out.dir.grad()).all().item<bool>());
}

TEST(DetectionLossTest, CodebookSlotAndNamedValues) {
  const TinyCase c = MakeTiny({0.f, 2.f}, {1.f, 0.f});
  auto terms = DetectionLoss(Config(), Dir())(c.out, c.targets);
  ASSERT_TRUE(terms.ok());
  const float before = terms->total.item<float>();
  terms->AddCodebook(torch::tensor(2.f), 0.05);
  EXPECT_NEAR(terms->codebook.item<float>(), 0.1, 1e-7);
  EXPECT_NEAR(terms->total.item<float>(), before + 0.1, 1e-6);
  const auto values = terms->Values();
  ASSERT_EQ(values.size(), 5u);  // no occ here
  EXPECT_EQ(values[0].first, "total");
  EXPECT_EQ(values[1].first, "cls");
  EXPECT_EQ(values[4].first, "codebook");
  EXPECT_NEAR(values[1].second, kFocalPos0 + kFocalNeg2, 1e-6);

  LossTerms only;  // stage 2: codebook alone
  only.AddCodebook(torch::tensor(3.f), 1.0);
  EXPECT_NEAR(only.total.item<float>(), 3.0, 1e-7);
}

TEST(DetectionLossTest, ShapeMismatchIsAnError) {
  TinyCase c = MakeTiny({0.f, 2.f}, {1.f, 0.f});
  c.out.reg = torch::zeros({1, 13, 1, 1});
  auto terms = DetectionLoss(Config(), Dir())(c.out, c.targets);
  ASSERT_FALSE(terms.ok());
  EXPECT_EQ(terms.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(terms.status().message().find("reg [1, 13, 1, 1]"), std::string::npos);
}

}  // namespace
}  // namespace qv2x
