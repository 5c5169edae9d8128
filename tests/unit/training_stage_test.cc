// Training building blocks: the multistep schedule, stage-2 freezing (bit-exact), and an
// atomic checkpoint write surviving a crash mid-write.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "core/common/file_util.h"
#include "core/config/model_config.h"
#include "core/model/checkpoint.h"
#include "core/model/detector.h"
#include "core/training/freezing.h"
#include "core/training/lr_schedule.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

TEST(LrScheduleTest, MultiStepDecaysAtEachMilestone) {
  const std::vector<int> milestones{15, 25};
  EXPECT_DOUBLE_EQ(MultiStepLr(0.002, 0.1, milestones, 0), 0.002);
  EXPECT_DOUBLE_EQ(MultiStepLr(0.002, 0.1, milestones, 14), 0.002);
  EXPECT_NEAR(MultiStepLr(0.002, 0.1, milestones, 15), 0.0002, 1e-15);
  EXPECT_NEAR(MultiStepLr(0.002, 0.1, milestones, 24), 0.0002, 1e-15);
  EXPECT_NEAR(MultiStepLr(0.002, 0.1, milestones, 25), 0.00002, 1e-15);
  EXPECT_NEAR(MultiStepLr(0.002, 0.1, milestones, 99), 0.00002, 1e-15);
  EXPECT_DOUBLE_EQ(MultiStepLr(0.5, 0.5, {}, 10), 0.5);
}

StageConfig TinyStage2() {
  auto cfg = LoadStageConfig("configs/tiny/stage2.yaml");
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  return *cfg;
}

TEST(FreezingTest, Stage2TrainsOnlyTheCodebookAndLeavesEverythingElseBitExact) {
  const StageConfig cfg = TinyStage2();
  torch::manual_seed(3);
  auto made = MakeDetector(cfg);
  ASSERT_TRUE(made.ok()) << made.status();
  Detector model = *made;
  auto params = TrainableParameters(model, 2);
  const auto codebook_params = model->codebook()->parameters();
  ASSERT_EQ(params.size(), codebook_params.size());
  for (const auto& item : model->named_parameters()) {
    EXPECT_EQ(item.value().requires_grad(), item.key().rfind("codebook.", 0) == 0) << item.key();
  }
  SetTrainMode(model, 2);
  for (const auto& m : model->modules(/*include_self=*/false)) {
    if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
      EXPECT_FALSE(bn->is_training());
    }
    if (auto* bn = m->as<torch::nn::BatchNorm1d>()) {
      EXPECT_FALSE(bn->is_training());
    }
  }
  EXPECT_TRUE(model->codebook()->is_training());

  // Snapshot, take optimiser steps on the reconstruction loss, compare.
  std::vector<std::pair<std::string, torch::Tensor>> before;
  for (const auto& [name, t] : StateDict(*model)) before.emplace_back(name, t.clone());
  torch::optim::Adam opt(params, torch::optim::AdamOptions(0.01).weight_decay(1e-4));
  for (int step = 0; step < 3; ++step) {
    const torch::Tensor x = torch::randn({2, cfg.model.codebook.channel, 8, 8});
    auto out = model->codebook()->forward(x);
    opt.zero_grad();
    out.loss.backward();
    opt.step();
  }
  int frozen = 0, moved = 0;
  for (const auto& [name, t] : StateDict(*model)) {
    // A copy for the lambda: clang refuses to capture a structured binding before C++20.
    const std::string key = name;
    const auto it =
        std::find_if(before.begin(), before.end(), [&](const auto& b) { return b.first == key; });
    ASSERT_NE(it, before.end()) << name;
    if (name.rfind("codebook.", 0) == 0) {
      moved += torch::equal(t, it->second) ? 0 : 1;
    } else {
      EXPECT_TRUE(torch::equal(t, it->second)) << name;
      ++frozen;
    }
  }
  EXPECT_GT(frozen, 10);
  EXPECT_GT(moved, 0);
}

TEST(FreezingTest, Stages1And3TrainEverything) {
  auto cfg = LoadStageConfig("configs/tiny/stage3.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  auto model = MakeDetector(*cfg);
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(TrainableParameters(*model, 3).size(), (*model)->parameters().size());
  SetTrainMode(*model, 3);
  EXPECT_TRUE((*model)->is_training());
}

TEST(AtomicCheckpointTest, CrashMidWriteLeavesTheOldCheckpointIntact) {
  const StageConfig cfg = TinyStage2();
  const std::string dir = ::testing::TempDir() + "/qv2x_atomic_ckpt";
  std::filesystem::remove_all(dir);
  const std::string path = dir + "/last.pth";
  torch::manual_seed(1);
  auto a = MakeDetector(cfg);
  ASSERT_TRUE(a.ok());
  CheckpointMeta meta;
  meta.stage = 2;
  meta.epoch = 1;
  ASSERT_TRUE(SaveCheckpoint(**a, meta, path).ok());
  auto original = ReadFile(path);
  ASSERT_TRUE(original.ok());

  // A child writes a different model but may only write 4 KiB: the write dies part way,
  // like a crash or a full disk.
  torch::manual_seed(2);
  auto b = MakeDetector(cfg);
  ASSERT_TRUE(b.ok());
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    rlimit lim{4096, 4096};
    setrlimit(RLIMIT_FSIZE, &lim);
    meta.epoch = 2;
    const absl::Status st = SaveCheckpoint(**b, meta, path);
    _exit(st.ok() ? 0 : 3);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3) << "the limited write should have failed";

  auto after = ReadFile(path);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *original);
  auto ckpt = ReadCheckpoint(path);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->meta.epoch, 1);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1) << "no temporary file may be left behind";
}

}  // namespace
}  // namespace qv2x
