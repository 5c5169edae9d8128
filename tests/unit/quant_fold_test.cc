// BatchNorm folding: conv, linear and transposed conv give the same outputs before and
// after folding; the transposed conv as 1x1 conv + pixel shuffle is exact; the folded
// (unquantized) simulated model reproduces the FP32 detector.
#include <torch/torch.h>

#include "core/model/bn_fold.h"
#include "core/model/checkpoint.h"
#include "core/quant/sim_net.h"
#include "gtest/gtest.h"
#include "tests/unit/quant_test_util.h"

namespace qv2x::quant {
namespace {

namespace nn = torch::nn;

template <typename Bn>
BnParams RandomBn(Bn& bn, double eps) {
  torch::NoGradGuard g;
  bn->running_mean.normal_(0, 0.5);
  bn->running_var.uniform_(0.2, 3.0);
  bn->weight.uniform_(0.5, 1.5);
  bn->bias.normal_(0, 0.5);
  bn->eval();
  return {bn->weight, bn->bias, bn->running_mean, bn->running_var, eps};
}

TEST(BnFold, Conv) {
  torch::manual_seed(0);
  torch::NoGradGuard g;
  for (int groups : {1, 4}) {
    for (bool bias : {false, true}) {
      nn::Conv2d conv(nn::Conv2dOptions(8, 16, 3).stride(2).padding(1).groups(groups).bias(bias));
      nn::BatchNorm2d bn(nn::BatchNorm2dOptions(16).eps(1e-5));
      const BnParams p = RandomBn(bn, 1e-5);
      const at::Tensor x = torch::randn({2, 8, 12, 10});
      const at::Tensor ref = bn(conv(x));
      const FoldedLayer f = FoldBatchNorm(conv->weight, bias ? conv->bias : at::Tensor(), p, 0);
      const at::Tensor y = torch::conv2d(x, f.weight, f.bias, 2, 1, 1, groups);
      EXPECT_TRUE(torch::allclose(y, ref, 1e-4, 1e-5)) << (y - ref).abs().max();
    }
  }
}

TEST(BnFold, Linear) {
  torch::manual_seed(1);
  torch::NoGradGuard g;
  nn::Linear linear(nn::LinearOptions(10, 32).bias(false));
  nn::BatchNorm1d bn(nn::BatchNorm1dOptions(32).eps(1e-3));
  const BnParams p = RandomBn(bn, 1e-3);
  const at::Tensor x = torch::randn({50, 10}) * 5;
  const at::Tensor ref = bn(linear(x));
  const FoldedLayer f = FoldBatchNorm(linear->weight, at::Tensor(), p, 0);
  EXPECT_TRUE(torch::allclose(torch::linear(x, f.weight, f.bias), ref, 1e-4, 1e-5));
}

TEST(BnFold, TransposedConvAndItsConv1x1Form) {
  torch::manual_seed(2);
  torch::NoGradGuard g;
  for (int s : {1, 2, 4}) {
    nn::ConvTranspose2d deconv(nn::ConvTranspose2dOptions(12, 8, s).stride(s).bias(false));
    nn::BatchNorm2d bn(nn::BatchNorm2dOptions(8).eps(1e-3));
    const BnParams p = RandomBn(bn, 1e-3);
    const at::Tensor x = torch::randn({1, 12, 5, 7});
    const at::Tensor ref = bn(deconv(x));
    const FoldedLayer f = FoldBatchNorm(deconv->weight, at::Tensor(), p, 1);
    const at::Tensor y = torch::conv_transpose2d(x, f.weight, f.bias, s);
    EXPECT_TRUE(torch::allclose(y, ref, 1e-4, 1e-5)) << "stride " << s;
    const FoldedLayer c = DeconvAsConv1x1(f.weight, f.bias);
    EXPECT_EQ(c.weight.sizes(), (std::vector<int64_t>{8 * s * s, 12, 1, 1}));
    const at::Tensor z = torch::pixel_shuffle(torch::conv2d(x, c.weight, c.bias), s);
    EXPECT_TRUE(torch::allclose(z, ref, 1e-4, 1e-5)) << "stride " << s;
  }
}

// With quantization off the folded model is the FP32 detector, agent and ego halves.
TEST(SimNet, FoldedModelMatchesDetector) {
  const StageConfig cfg = testing::TinyStage3();
  Detector model = testing::TinyDetector(cfg, 3);
  const std::vector<Sample> frames = testing::TinyFrames(cfg, 2);
  auto net = SimNet::Build(cfg, StateDict(*model));
  ASSERT_TRUE(net.ok()) << net.status();
  torch::NoGradGuard g;
  // A non-trivial input equalisation must not change the FP32 function.
  (*net)->SetPfnInputScale(torch::rand({kPfnInputs}) * 10 + 0.1);
  for (const Sample& s : frames) {
    std::vector<at::Tensor> maps;
    std::vector<AgentMessage> messages;
    for (size_t i = 0; i < s.collated.agents.size(); ++i) {
      const Pillars& p = s.collated.agents[i].pillars;
      const at::Tensor sim = (*net)->AgentForward(MakePillarBatch({&p}), SimCtx::Fp());
      auto enc = model->agent_encoder()->Encode(p);
      ASSERT_TRUE(enc.ok()) << enc.status();
      EXPECT_TRUE(torch::allclose(sim[0], enc->features, 1e-3, 1e-4))
          << (sim[0] - enc->features).abs().max();
      maps.push_back((*net)->EncodeDecode(enc->features.unsqueeze(0)).second);
      messages.push_back({at::Tensor(), enc->indices, s.collated.warp_to_ego[i]});
    }
    const SimHeads sim = (*net)->EgoForward(maps, WarpTensor(s.collated.warp_to_ego), SimCtx::Fp());
    auto ref = model->ego_fusion()->Fuse(messages);
    ASSERT_TRUE(ref.ok()) << ref.status();
    EXPECT_TRUE(torch::allclose(sim.cls, ref->cls, 1e-3, 1e-3)) << (sim.cls - ref->cls).abs().max();
    EXPECT_TRUE(torch::allclose(sim.reg, ref->reg, 1e-3, 1e-3));
    EXPECT_TRUE(torch::allclose(sim.dir, ref->dir, 1e-3, 1e-3));
  }
}

TEST(SimNet, MissingTensorIsNamed) {
  const StageConfig cfg = testing::TinyStage3();
  Detector model = testing::TinyDetector(cfg, 4);
  NamedTensors state = StateDict(*model);
  state.erase(std::remove_if(state.begin(), state.end(),
                             [](const auto& e) {
                               return e.first == "shrink_conv.layers.0.double_conv.2.bias";
                             }),
              state.end());
  auto net = SimNet::Build(cfg, state);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("shrink_conv.layers.0.double_conv.2.bias"),
            std::string::npos);
}

}  // namespace
}  // namespace qv2x::quant
