// PTQ end to end on the tiny preset: learned rounding lowers a block's output error below
// nearest rounding; QuantizeCheckpoint calibrates, reconstructs, reports progress, writes
// a loadable artifact, honours cancel and validates its options.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "core/model/checkpoint.h"
#include "core/quant/int8_model.h"
#include "core/quant/ptq.h"
#include "core/quant/ptq_pipeline.h"
#include "core/quant/reconstruction.h"
#include "gtest/gtest.h"
#include "tests/unit/quant_test_util.h"

namespace qv2x::quant {
namespace {

TEST(AdaRound, ReducesBlockErrorBelowNearestRounding) {
  const StageConfig cfg = testing::TinyStage3();
  Detector model = testing::TinyDetector(cfg, 21);
  const std::vector<Sample> frames = testing::TinyFrames(cfg, 3);
  PtqOptions o;
  o.n_bits_w = 3;  // coarse enough for rounding choices to matter
  o.reconstruct = false;
  auto run = RunPtq(cfg, StateDict(*model), testing::Collated(frames), o, nullptr, nullptr);
  ASSERT_TRUE(run.ok()) << run.status();
  SimNet& net = *run->net;
  // Inputs of the first backbone block, as PTQ's walk computes them.
  ReconData data;
  {
    torch::NoGradGuard g;
    for (const Sample& s : frames) {
      for (const AgentInput& a : s.collated.agents) {
        const PillarBatch b = MakePillarBatch({&a.pillars});
        data.fp_in.push_back(
            ScatterAgentToBev(net.agent[0].Forward(b.features, SimCtx::Fp()), b, 0).clone());
        data.q_in.push_back(
            ScatterAgentToBev(net.agent[0].Forward(b.features, SimCtx::Quant()), b, 0).clone());
      }
    }
  }
  o.iters_w = 300;
  o.recon_lr = 5e-3;
  o.recon_crop = 16;
  std::mt19937_64 rng(0);
  auto r = ReconstructBlock(net.agent[1], data, o, rng, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->block, "backbone_m1.resnet.layer0.0");
  EXPECT_GT(r->loss_before, 0);
  EXPECT_LT(r->loss_after, r->loss_before);
  EXPECT_TRUE(r->learned);
  EXPECT_NEAR(BlockOutputError(net.agent[1], data), r->loss_after, 1e-9 + 1e-6 * r->loss_after);
  // Learned levels differ from nearest rounding by at most one step.
  for (SimLayer* l : net.agent[1].AllLayers()) {
    ASSERT_TRUE(l->levels.defined());
    EXPECT_LE((l->levels - WeightLevels(l->weight, l->wq)).abs().max().item<double>(), 1.0);
  }
}

class QuantizeCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/quant_ptq_test";
    std::filesystem::create_directories(dir_);
    cfg_ = testing::TinyStage3();
    Detector model = testing::TinyDetector(cfg_, 5);
    CheckpointMeta meta;
    meta.model = cfg_.model.core_method;
    meta.stage = 3;
    meta.config_yaml = cfg_.source_yaml;
    ckpt_ = dir_ + "/tiny.pth";
    ASSERT_TRUE(SaveCheckpoint(*model, meta, ckpt_).ok());
    digest_ = CodebookDigestOf(*model);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_, ckpt_, digest_;
  StageConfig cfg_;
};

TEST_F(QuantizeCheckpointTest, WritesALoadableArtifactWithProgress) {
  PtqOptions o;
  o.num_cali_batches = 2;
  o.iters_w = 10;
  o.recon_samples = 2;
  o.qdrop = true;
  std::vector<PtqProgress> events;
  const std::string out = dir_ + "/tiny.int8";
  auto r = QuantizeCheckpoint(
      "configs/tiny/stage3.yaml", ckpt_, "sim:configs/scenes/tiny.yaml", o, out,
      [&](const PtqProgress& p) { events.push_back(p); }, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->codebook_digest, digest_);
  EXPECT_GT(r->artifact_file_bytes, 0);
  EXPECT_GT(r->fp32_bytes, 0);
  EXPECT_LT(r->int8_bytes, r->fp32_bytes / 2);
  const size_t blocks = MakeModelSpec(cfg_).Blocks().size();
  EXPECT_EQ(r->reconstruction.size(), blocks);
  int calib = 0, recon = 0;
  for (const PtqProgress& p : events) {
    calib += p.kind == PtqProgress::kCalibration;
    recon += p.kind == PtqProgress::kReconstruction;
  }
  EXPECT_EQ(calib, 2);
  EXPECT_EQ(recon, static_cast<int>(blocks));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, PtqProgress::kDone);
  for (const PtqBlockResult& b : r->reconstruction) {
    EXPECT_GE(b.loss_before, 0) << b.block;
    EXPECT_TRUE(std::isfinite(b.loss_after)) << b.block;
  }
  auto enc = Int8AgentEncoder::Load(out);
  ASSERT_TRUE(enc.ok()) << enc.status();
  EXPECT_EQ((*enc)->codebook_digest(), digest_);
  EXPECT_EQ((*enc)->weight_bytes(), r->int8_bytes);
}

TEST_F(QuantizeCheckpointTest, CancelWritesNothingAndBadOptionsAreRefused) {
  const std::string out = dir_ + "/cancelled.int8";
  std::atomic<bool> cancel{true};
  PtqOptions o;
  o.num_cali_batches = 1;
  auto r = QuantizeCheckpoint("configs/tiny/stage3.yaml", ckpt_, "sim:configs/scenes/tiny.yaml", o,
                              out, nullptr, &cancel);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(std::filesystem::exists(out));
  o.n_bits_w = 9;
  r = QuantizeCheckpoint("configs/tiny/stage3.yaml", ckpt_, "sim:configs/scenes/tiny.yaml", o, out,
                         nullptr, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("n_bits_w"), std::string::npos);
}

}  // namespace
}  // namespace qv2x::quant

namespace qv2x::quant {
namespace {

TEST(PtqOptionsFile, DefaultsFileMatchesTheStructAndBadKeysAreNamed) {
  auto o = LoadPtqOptions("configs/ptq/default.yaml");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(PtqOptionsJson(*o), PtqOptionsJson(PtqOptions()));
  const std::string path = ::testing::TempDir() + "/ptq_bad.yaml";
  std::ofstream(path) << "n_bits_w: 4\nscale_method: median\n";
  auto bad = LoadPtqOptions(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("scale_method"), std::string::npos);
  std::ofstream(path) << "n_bits_w: 4\nitres_w: 10\n";
  bad = LoadPtqOptions(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("itres_w"), std::string::npos);
  std::ofstream(path) << "n_bits_w: 4\nqdrop: true\n";
  auto ok = LoadPtqOptions(path);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->n_bits_w, 4);
  EXPECT_TRUE(ok->qdrop);
  EXPECT_EQ(ok->iters_w, 5000);
}

}  // namespace
}  // namespace qv2x::quant
