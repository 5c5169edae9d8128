// Quantizer math: weight and activation round trips within half a step for every bit
// width, the error search never doing worse than min/max, AdaRound's start point, and
// the bit packing of sub-8-bit weights.
#include <torch/torch.h>

#include <random>

#include "core/quant/bit_pack.h"
#include "core/quant/quantizer.h"
#include "gtest/gtest.h"

namespace qv2x::quant {
namespace {

// Random weights of varied shapes, scales and skew (some rows entirely positive).
std::vector<at::Tensor> RandomWeights(int seed) {
  torch::manual_seed(seed);
  std::vector<at::Tensor> out;
  out.push_back(torch::randn({16, 8, 3, 3}) * 0.1);
  out.push_back(torch::rand({6, 20}) * 3 + 0.5);     // all positive
  out.push_back(-torch::rand({5, 4, 1, 1}) * 1e-3);  // all negative, tiny
  out.push_back(torch::randn({12, 30}).pow(3));      // heavy tails
  at::Tensor z = torch::randn({4, 9});
  z[2].zero_();  // an all-zero row
  out.push_back(z);
  return out;
}

TEST(WeightQuant, MinMaxRoundTripWithinHalfStep) {
  for (int seed = 0; seed < 3; ++seed) {
    for (const at::Tensor& w : RandomWeights(seed)) {
      for (int bits = 2; bits <= 8; ++bits) {
        SCOPED_TRACE(::testing::Message() << "bits " << bits << " shape " << w.sizes());
        const WeightQuant q = FitWeightQuant(w, bits, ScaleMethod::kMinMax);
        const at::Tensor levels = WeightLevels(w, q);
        EXPECT_GE(levels.min().item<double>(), 0);
        EXPECT_LE(levels.max().item<double>(), static_cast<double>(QMax(bits)));
        EXPECT_TRUE(torch::equal(q.zero_point, torch::round(q.zero_point)));
        if (bits == 8) {
          EXPECT_TRUE((q.zero_point == 128).all().item<bool>());
        }
        // level − zero point fits the int8 kernels.
        const at::Tensor centred = levels.reshape({w.size(0), -1}) - q.zero_point.view({-1, 1});
        EXPECT_GE(centred.min().item<double>(), -128);
        EXPECT_LE(centred.max().item<double>(), 127);
        const at::Tensor err = (w - DequantizeWeight(levels, q)).abs().reshape({w.size(0), -1});
        const at::Tensor half = q.scale.view({-1, 1}) * 0.5 * (1 + 1e-5) + 1e-12;
        EXPECT_TRUE((err <= half).all().item<bool>()) << (err - half).max().item<double>();
      }
    }
  }
}

TEST(WeightQuant, MseSearchNeverWorseThanMinMax) {
  for (const at::Tensor& w : RandomWeights(7)) {
    for (int bits : {2, 3, 4, 8}) {
      const WeightQuant mm = FitWeightQuant(w, bits, ScaleMethod::kMinMax);
      const WeightQuant mse = FitWeightQuant(w, bits, ScaleMethod::kMse);
      auto err = [&](const WeightQuant& q) {
        return (w - DequantizeWeight(WeightLevels(w, q), q))
            .abs()
            .pow(2.4)
            .reshape({w.size(0), -1})
            .sum(1);
      };
      EXPECT_TRUE((err(mse) <= err(mm) + 1e-12).all().item<bool>()) << "bits " << bits;
      // Within its own clipping range the search's grid also rounds within half a step.
      const at::Tensor lo = -mse.scale * mse.zero_point;
      const at::Tensor hi = mse.scale * (static_cast<double>(QMax(bits)) - mse.zero_point);
      const at::Tensor w2 = w.reshape({w.size(0), -1});
      const at::Tensor inside = (w2 >= lo.view({-1, 1})) & (w2 <= hi.view({-1, 1}));
      const at::Tensor e =
          (w - DequantizeWeight(WeightLevels(w, mse), mse)).abs().reshape({w.size(0), -1});
      const at::Tensor half = (mse.scale.view({-1, 1}) * 0.5 * (1 + 1e-5) + 1e-12).expand_as(e);
      EXPECT_TRUE((e.masked_select(inside) <= half.masked_select(inside)).all().item<bool>());
    }
  }
}

TEST(ActQuant, RoundTripWithinHalfStepAndZeroExact) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(-5, 5);
  for (int trial = 0; trial < 20; ++trial) {
    torch::manual_seed(trial);
    const double a = u(rng), b = u(rng);
    const at::Tensor x =
        torch::rand({1000}, torch::kFloat64).to(torch::kFloat32) * std::abs(b - a) + std::min(a, b);
    for (int bits = 2; bits <= 8; ++bits) {
      ActObserver obs;
      obs.Add(x);
      const ActQuant q = FitActQuant(obs, bits, ScaleMethod::kMinMax);
      EXPECT_GE(q.zero_point, 0);
      EXPECT_LE(q.zero_point, QMax(bits));
      const at::Tensor err = (x - FakeQuantAct(x, q)).abs();
      EXPECT_LE(err.max().item<double>(), q.scale * 0.5 * (1 + 1e-4)) << "bits " << bits;
      EXPECT_EQ(FakeQuantAct(torch::zeros({3}), q).abs().max().item<float>(), 0.f);
    }
  }
}

TEST(ActQuant, ReluOutputsGetZeroPointZeroAndMseClips) {
  torch::manual_seed(1);
  const at::Tensor x = torch::randn({20000}).pow(3).relu();  // heavy right tail
  ActObserver obs;
  obs.Add(x);
  const ActQuant mm = FitActQuant(obs, 8, ScaleMethod::kMinMax);
  const ActQuant mse = FitActQuant(obs, 8, ScaleMethod::kMse);
  EXPECT_EQ(mm.zero_point, 0);
  EXPECT_EQ(mse.zero_point, 0);
  EXPECT_LE(mse.scale, mm.scale);
}

TEST(AdaRound, StartsAtTheFloatWeightsAndHardensToFloorOrCeil) {
  torch::manual_seed(2);
  const at::Tensor w = torch::randn({8, 4, 3, 3}) * 0.2;
  const WeightQuant q = FitWeightQuant(w, 4, ScaleMethod::kMinMax);
  const at::Tensor v = AdaRoundInit(w, q);
  const at::Tensor soft = DequantizeWeight(AdaRoundSoftLevels(w, q, v), q);
  // Where the grid does not clip (its rounded zero point may shift it by half a step).
  const at::Tensor x = w / q.scale.view({-1, 1, 1, 1}) + q.zero_point.view({-1, 1, 1, 1});
  const at::Tensor inside = (x >= 0) & (x <= static_cast<double>(QMax(4)));
  EXPECT_TRUE(torch::allclose(soft.masked_select(inside), w.masked_select(inside), 1e-4, 1e-5));
  const at::Tensor hard = AdaRoundHardLevels(w, q, v);
  EXPECT_TRUE(torch::equal(hard, WeightLevels(w, q)));  // starts as nearest rounding
  const at::Tensor moved = AdaRoundHardLevels(w, q, torch::randn_like(v) * 5);
  const at::Tensor diff = (moved - WeightLevels(w, q)).abs();
  EXPECT_LE(diff.max().item<double>(), 1.0);
  EXPECT_GT(AdaRoundRegularizer(v, 20).item<double>(), 0);
}

TEST(BitPack, RoundTripEveryWidth) {
  std::mt19937 rng(5);
  for (int bits = 1; bits <= 8; ++bits) {
    for (int64_t count : {0, 1, 7, 8, 9, 1000, 1001}) {
      std::vector<uint8_t> v(count);
      for (auto& x : v) x = static_cast<uint8_t>(rng() & ((1u << bits) - 1));
      const std::vector<uint8_t> packed = PackBits(v.data(), count, bits);
      EXPECT_EQ(static_cast<int64_t>(packed.size()), PackedBytes(count, bits));
      auto back = UnpackBits(packed.data(), packed.size(), count, bits);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(*back, v) << "bits " << bits << " count " << count;
    }
  }
  const std::vector<uint8_t> few(2, 0);
  EXPECT_FALSE(UnpackBits(few.data(), few.size(), 5, 4).ok());
}

}  // namespace
}  // namespace qv2x::quant
