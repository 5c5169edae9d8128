// The simulator's random source: known answers, determinism and distribution moments.
#include "core/sim/rng.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace qv2x::sim {
namespace {

TEST(RngTest, Mix64MatchesSplitMix64) {
  // SplitMix64's first outputs from state 0 (published reference values).
  EXPECT_EQ(Mix64(0), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(Mix64(0x9e3779b97f4a7c15ULL), 0x6e789e6aa1b965f4ULL);
}

TEST(RngTest, SameKeySameSequence) {
  Rng a(StreamKey(42, {1, 2, 3})), b(StreamKey(42, {1, 2, 3}));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.Next(), b.Next());
  Rng c(StreamKey(42, {1, 2, 3})), d(StreamKey(42, {1, 2, 3}));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(c.Normal(), d.Normal());
}

TEST(RngTest, StreamKeysSeparateSeedsLabelsAndOrder) {
  const uint64_t base = StreamKey(42, {1, 2, 3});
  EXPECT_NE(base, StreamKey(43, {1, 2, 3}));
  EXPECT_NE(base, StreamKey(42, {1, 2, 4}));
  EXPECT_NE(base, StreamKey(42, {3, 2, 1}));
  EXPECT_NE(base, StreamKey(42, {1, 2}));
  EXPECT_NE(StreamKey(42, {-1}), StreamKey(42, {1}));
}

TEST(RngTest, UniformMomentsAndRange) {
  Rng r(StreamKey(1, {}));
  const int n = 200000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = r.Uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum2 += u * u;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 0.004);
  EXPECT_NEAR(var, 1.0 / 12, 0.002);
  for (int i = 0; i < 1000; ++i) {
    const double v = r.Uniform(-3, 5);
    ASSERT_GE(v, -3);
    ASSERT_LT(v, 5);
  }
}

TEST(RngTest, NormalMoments) {
  Rng r(StreamKey(2, {}));
  const int n = 200000;
  double sum = 0, sum2 = 0, sum4 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = r.Normal();
    sum += z;
    sum2 += z * z;
    sum4 += z * z * z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum2 / n, 1.0, 0.015);
  EXPECT_NEAR(sum4 / n, 3.0, 0.08);  // kurtosis of a Gaussian
}

TEST(RngTest, BelowCoversEveryValueEvenly) {
  Rng r(StreamKey(3, {}));
  std::vector<int> hist(7, 0);
  const int n = 70000;
  for (int i = 0; i < n; ++i) {
    const int64_t k = r.Below(7);
    ASSERT_GE(k, 0);
    ASSERT_LT(k, 7);
    ++hist[k];
  }
  for (int h : hist) EXPECT_NEAR(h, n / 7, 400);
}

}  // namespace
}  // namespace qv2x::sim
