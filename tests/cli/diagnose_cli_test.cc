// `qv2x diagnose` end to end on the tiny preset: the table and the JSON report agree with the
// ground truth `qv2x infer` writes for the same frames; bad flags are one-line errors.
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/cli_test_util.h"

namespace {

class DiagnoseCli : public ::qv2x::testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    ckpt_ = dir() + "/init.pth";
    const auto r = Run("model init --config configs/tiny/stage1.yaml --seed 1 --out " + ckpt_);
    ASSERT_EQ(r.exit_code, 0) << r.Combined();
  }
  std::string Args(const std::string& extra) const {
    return "--config configs/tiny/stage1.yaml --checkpoint " + ckpt_ +
           " --scene configs/scenes/tiny.yaml --frames 3 " + extra;
  }
  std::string ckpt_;
};

TEST_F(DiagnoseCli, ReportCountsTheGroundTruthInferScores) {
  const std::string json = dir() + "/diag.json";
  auto r = Run("diagnose " + Args("--json " + json + " --distance-bins 0,5,10"));
  ASSERT_EQ(r.exit_code, 0) << r.Combined();
  for (const char* cls : {"vehicle", "pedestrian", "truck"}) {
    EXPECT_NE(r.out.find(cls), std::string::npos) << r.out;
  }
  EXPECT_NE(r.out.find("3 frames (cooperative"), std::string::npos) << r.out;
  const auto report = nlohmann::json::parse(Slurp(json));
  EXPECT_EQ(report["frames"].get<int>(), 3);

  auto infer = Run("infer " + Args("--out " + dir() + "/infer"));
  ASSERT_EQ(infer.exit_code, 0) << infer.Combined();
  const auto gt = nlohmann::json::parse(Slurp(dir() + "/infer/gt.json"));
  std::map<std::string, int> per_class;
  for (const auto& f : gt["frames"]) {
    for (const auto& b : f["boxes"]) ++per_class[b["class"].get<std::string>()];
  }
  int total = 0;
  for (const char* cls : {"vehicle", "pedestrian", "truck"}) {
    const auto& c = report["classes"][cls];
    EXPECT_EQ(c["gt_boxes"].get<int>(), per_class[cls]) << cls;
    EXPECT_EQ(c["recall"]["all"]["gt"].get<int>(), per_class[cls]) << cls;
    int by_distance = 0;
    for (const auto& [bin, count] : c["recall"]["by_distance_m"].items()) {
      by_distance += count["gt"].get<int>();
    }
    EXPECT_EQ(by_distance, per_class[cls]) << cls;
    EXPECT_TRUE(c["recall"]["by_distance_m"].contains("5-10")) << c.dump();
    EXPECT_EQ(c["assignment"]["best_anchor_iou_histogram"].size(), 10u);
    total += per_class[cls];
  }
  EXPECT_GT(total, 0);
}

TEST_F(DiagnoseCli, BadFlagsAreOneLineErrors) {
  ExpectOneLineError("diagnose " + Args("--distance-bins 0,x"), "--distance-bins");
  ExpectOneLineError("diagnose " + Args("--distance-bins 5,10"), "start at 0");
  ExpectOneLineError("diagnose " + Args("--iou 0"), "IoU threshold");
  ExpectOneLineError("diagnose --config configs/tiny/stage1.yaml --checkpoint " + ckpt_, "--scene");
}

}  // namespace
