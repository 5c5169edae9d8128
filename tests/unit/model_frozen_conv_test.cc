// Frozen inference convolutions: folded BatchNorm, fused ReLU and packed weights give the
// plain eval forward's numbers, block by block and for the whole detector; a parameter
// changed after freezing sends the layer back to its plain path.
#include <torch/torch.h>

#include "core/model/detector.h"
#include "core/model/frozen_conv.h"
#include "core/model/resnet.h"
#include "gtest/gtest.h"
#include "tests/unit/model_test_util.h"

namespace qv2x {
namespace {

using testing::CpuConfig;
using testing::MakeFrame;

double RelDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

// BatchNorm statistics far from the identity, so that folding is actually exercised.
void RandomizeBatchNorms(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& child : m.modules()) {
    if (auto* bn = child->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.3, 0.3);
      bn->running_mean.uniform_(-0.2, 0.2);
      bn->running_var.uniform_(0.5, 2.0);
    }
  }
}

torch::Tensor ChannelsLastInput(int64_t c, int64_t h, int64_t w) {
  return torch::randn({1, c, h, w}).contiguous(torch::MemoryFormat::ChannelsLast);
}

class FrozenConvTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    SetPackedConvolutions(GetParam());
    torch::manual_seed(3);
  }
  void TearDown() override { SetPackedConvolutions(true); }
};

TEST_P(FrozenConvTest, BlocksMatchTheirPlainForward) {
  BasicBlock basic(32, 64, 2, /*downsample=*/true, 1e-5);
  Bottleneck bottleneck(64, 64, 1, /*downsample=*/false, /*groups=*/8, /*width_per_group=*/8, 1e-3);
  Bottleneck strided(64, 128, 2, /*downsample=*/true, 8, 8, 1e-3);
  torch::NoGradGuard no_grad;
  for (torch::nn::Module* m :
       std::initializer_list<torch::nn::Module*>{basic.get(), bottleneck.get(), strided.get()}) {
    RandomizeBatchNorms(*m);
    m->eval();
  }
  const torch::Tensor x = ChannelsLastInput(32, 32, 64);
  const torch::Tensor plain_basic = basic(x);
  const torch::Tensor y = ChannelsLastInput(64, 16, 32);
  const torch::Tensor plain_bottleneck = bottleneck(y), plain_strided = strided(y);
  basic->Freeze();
  bottleneck->Freeze();
  strided->Freeze();
  EXPECT_LT(RelDiff(basic(x), plain_basic), 1e-5);
  EXPECT_LT(RelDiff(bottleneck(y), plain_bottleneck), 1e-5);
  EXPECT_LT(RelDiff(strided(y), plain_strided), 1e-5);
  // Same answers on a plain NCHW input.
  EXPECT_LT(RelDiff(basic(x.contiguous()), plain_basic), 1e-5);
}

TEST_P(FrozenConvTest, AChangedParameterSendsTheLayerBackToItsPlainPath) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(16, 16, 3).padding(1).bias(false));
  torch::nn::BatchNorm2d bn(16);
  torch::NoGradGuard no_grad;
  RandomizeBatchNorms(*bn);
  bn->eval();
  FrozenConv frozen(*conv, bn.get(), /*relu=*/true);
  ASSERT_TRUE(frozen.usable());
  const torch::Tensor x = ChannelsLastInput(16, 8, 8);
  EXPECT_LT(RelDiff(frozen(x), bn(conv(x)).relu()), 1e-5);
  conv->weight.mul_(2);  // an optimiser step or load_state_dict writes in place like this
  EXPECT_FALSE(frozen.usable());
  FrozenConv again(*conv, bn.get(), true);
  bn->running_mean.add_(1);
  EXPECT_FALSE(again.usable());
  EXPECT_FALSE(FrozenConv().usable());
}

TEST_P(FrozenConvTest, TransposedConvWithBatchNormAndRelu) {
  torch::nn::ConvTranspose2d deconv(
      torch::nn::ConvTranspose2dOptions(32, 16, 2).stride(2).bias(false));
  torch::nn::BatchNorm2d bn(16);
  torch::NoGradGuard no_grad;
  RandomizeBatchNorms(*bn);
  bn->eval();
  const torch::Tensor x = ChannelsLastInput(32, 8, 16);
  FrozenConv frozen(*deconv, bn.get(), /*relu=*/true);
  EXPECT_LT(RelDiff(frozen(x), bn(deconv(x)).relu()), 1e-5);
}

// The detector as the services run it: the frozen eval forward equals the plain one, and
// training mode is untouched by freezing.
TEST_P(FrozenConvTest, DetectorHeadsUnchangedByFreezing) {
  // Without a codebook: an argmin tie flipped by float rounding would move a whole cell.
  StageConfig cfg = CpuConfig(false);
  auto model = MakeDetector(cfg);
  ASSERT_TRUE(model.ok()) << model.status();
  RandomizeBatchNorms(**model);
  (*model)->eval();
  torch::NoGradGuard no_grad;
  const CollatedFrame f =
      MakeFrame(cfg, {{0, 0, 0, 0, 0, 0}, {8, 2, 0, 0, 30, 0}, {-5, -1, 0, 0, 180, 0}}, 2000, 5);
  auto plain = RunDetector(*model, {&f});
  ASSERT_TRUE(plain.ok()) << plain.status();
  (*model)->FreezeForInference();
  auto frozen = RunDetector(*model, {&f});
  ASSERT_TRUE(frozen.ok()) << frozen.status();
  EXPECT_LT(RelDiff(frozen->cls, plain->cls), 1e-4);
  EXPECT_LT(RelDiff(frozen->reg, plain->reg), 1e-4);
  EXPECT_LT(RelDiff(frozen->dir, plain->dir), 1e-4);
  for (size_t l = 0; l < plain->occupancy.size(); ++l) {
    EXPECT_LT(RelDiff(frozen->occupancy[l], plain->occupancy[l]), 1e-4) << "level " << l;
  }
}

INSTANTIATE_TEST_SUITE_P(PackedAndPlain, FrozenConvTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Packed" : "Conv2d"; });

TEST(FrozenConv, DebianLibTorchHasThePackedConvolution) {
  // Debian's LibTorch 1.13 is built with oneDNN; if this fails, FrozenConv silently runs
  // the slower conv2d path and the benchmarks would say so.
  EXPECT_TRUE(PackedConvolutionsAvailable());
}

}  // namespace
}  // namespace qv2x
