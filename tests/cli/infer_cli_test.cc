// `qv2x infer` end to end on the tiny preset: a fresh checkpoint from `qv2x model init`,
// cooperative and ego-only runs writing box files that `qv2x eval` reads, BEV pictures, and
// one-line errors for a missing or mismatched checkpoint.
#include <filesystem>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/cli_test_util.h"

namespace {

class InferCli : public ::qv2x::testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    ckpt_ = dir() + "/init.pth";
    const auto r = Run("model init --config configs/tiny/stage1.yaml --seed 1 --out " + ckpt_);
    ASSERT_EQ(r.exit_code, 0) << r.Combined();
  }
  std::string Infer(const std::string& out, const std::string& extra) const {
    return "infer --config configs/tiny/stage1.yaml --checkpoint " + ckpt_ +
           " --scene configs/scenes/tiny.yaml --frames 3 --out " + dir() + "/" + out + " " + extra;
  }
  std::string ckpt_;
};

TEST_F(InferCli, CooperativeAndEgoOnlyWriteEvalReadableFiles) {
  auto coop = Run(Infer("coop", "--render " + dir() + "/frames"));
  ASSERT_EQ(coop.exit_code, 0) << coop.Combined();
  EXPECT_NE(coop.out.find("cooperative"), std::string::npos) << coop.out;
  const auto gt = nlohmann::json::parse(Slurp(dir() + "/coop/gt.json"));
  const auto pred = nlohmann::json::parse(Slurp(dir() + "/coop/pred.json"));
  ASSERT_EQ(gt["frames"].size(), 3u);
  ASSERT_EQ(pred["frames"].size(), 3u);
  size_t gt_boxes = 0;
  for (const auto& f : gt["frames"]) gt_boxes += f["boxes"].size();
  EXPECT_GT(gt_boxes, 0u) << "the tiny scene has visible objects";
  for (const auto& f : pred["frames"]) {
    for (const auto& b : f["boxes"]) EXPECT_TRUE(b.contains("score"));
  }
  for (int i = 0; i < 3; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "/frames/frame_%06d.png", i);
    EXPECT_TRUE(std::filesystem::exists(dir() + name)) << name;
  }

  auto ego = Run(Infer("ego", "--ego-only"));
  ASSERT_EQ(ego.exit_code, 0) << ego.Combined();
  EXPECT_NE(ego.out.find("ego only"), std::string::npos) << ego.out;
  // The same ground truth scores both runs, so they are comparable.
  EXPECT_EQ(Slurp(dir() + "/ego/gt.json"), Slurp(dir() + "/coop/gt.json"));

  auto eval =
      Run("eval --pred " + dir() + "/coop/pred.json --gt " + dir() + "/coop/gt.json --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.Combined();
  const auto report = nlohmann::json::parse(eval.out);
  EXPECT_TRUE(report["ap"].contains("vehicle"));
  EXPECT_TRUE(report["map"].contains("0.5"));
}

TEST_F(InferCli, MissingAndMismatchedCheckpointsAreOneLineErrors) {
  ExpectOneLineError("infer --config configs/tiny/stage1.yaml --checkpoint " + dir() +
                         "/nope.pth --scene configs/scenes/tiny.yaml --out " + dir() + "/x",
                     "nope.pth");
  // A stage-1 checkpoint lacks the codebook a stage-3 model needs: the error names it.
  ExpectOneLineError("infer --config configs/tiny/stage3.yaml --checkpoint " + ckpt_ +
                         " --scene configs/scenes/tiny.yaml --out " + dir() + "/y",
                     "codebook");
  ExpectOneLineError(
      "infer --config configs/tiny/stage1.yaml --checkpoint " + ckpt_ + " --out " + dir() + "/z",
      "--scene");
}

}  // namespace
