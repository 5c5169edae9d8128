// DiagnoseDetector on the tiny scene: its per-class counts agree with the target assigner and
// the ground truth frame by frame, its loss shares add up to the detection loss, and an
// over-fitted frame's boxes get high scores on their positive anchors.
#include "core/training/detection_diagnosis.h"

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/config/model_config.h"
#include "core/detection/loss.h"
#include "core/training/freezing.h"
#include "core/training/sample_builder.h"
#include "core/training/stage_loss.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

class DiagnosisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = LoadStageConfig("configs/tiny/stage1.yaml");
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    cfg_ = *cfg;
    auto grid = MakeAnchorGrid(cfg_);
    ASSERT_TRUE(grid.ok()) << grid.status();
    grid_ = *std::move(grid);
    auto source = FrameSource::Open(cfg_.root_dir, 4);
    ASSERT_TRUE(source.ok()) << source.status();
    source_ = *std::move(source);
    torch::manual_seed(5);
    auto model = MakeDetector(cfg_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *model;
  }
  StageConfig cfg_;
  AnchorGrid grid_;
  std::unique_ptr<FrameSource> source_;
  Detector model_{nullptr};
};

TEST_F(DiagnosisTest, CountsAndLossAgreeWithTheAssignerFrameByFrame) {
  auto report = DiagnoseDetector(model_, *source_, cfg_, grid_);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->frames, 4);
  ASSERT_EQ(source_->size(), 4u);

  // The same numbers, recomputed directly.
  std::array<int64_t, kNumClasses> gt{}, positives{};
  double loss_total = 0;
  SampleOptions opts;
  opts.mode = PillarMode::kTest;
  model_->eval();
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < source_->size(); ++i) {
    auto frame = source_->Read(i);
    ASSERT_TRUE(frame.ok());
    auto sample = BuildSample(*frame, cfg_, grid_, opts);
    ASSERT_TRUE(sample.ok());
    for (const LabeledBox& b : sample->gt) ++gt[static_cast<int>(b.cls)];
    const at::Tensor labels =
        sample->targets.labels.reshape({-1, grid_.num_classes, grid_.num_yaws});
    for (int k = 0; k < grid_.num_classes; ++k) {
      positives[static_cast<int>(grid_.class_ids[k])] +=
          labels.select(1, k).eq(1).sum().item<int64_t>();
    }
    auto out = RunDetector(model_, {&sample->collated});
    ASSERT_TRUE(out.ok());
    auto batch = StackTargets({sample->targets});
    ASSERT_TRUE(batch.ok());
    auto terms =
        DetectionLoss(cfg_.loss, cfg_.model.dir_args)({out->cls, out->reg, out->dir}, *batch);
    ASSERT_TRUE(terms.ok());
    loss_total += terms->total.item<double>();
  }
  int64_t all_gt = 0;
  double loss_sum = 0;
  for (int c = 0; c < kNumClasses; ++c) {
    const AnchorClassDiagnosis& a = report->anchors[c];
    EXPECT_TRUE(a.has_anchors);
    EXPECT_EQ(a.gt_boxes, gt[c]) << c;
    EXPECT_EQ(a.positives, positives[c]) << c;
    EXPECT_EQ(report->breakdown.of(static_cast<ObjectClass>(c)).all.gt, gt[c]) << c;
    EXPECT_EQ(report->ap.num_gt[c], gt[c]) << c;
    // Every box of a class with anchors has a best-IoU entry.
    EXPECT_EQ(a.best_anchor_iou.Total(), gt[c]) << c;
    EXPECT_LE(a.gt_forced_only + a.gt_no_overlap, 2 * a.gt_boxes);
    EXPECT_LE(a.detections, a.candidates) << c;
    loss_sum += a.loss_cls + a.loss_reg + a.loss_dir;
    all_gt += gt[c];
  }
  EXPECT_GT(all_gt, 0) << "the tiny scene has objects";
  EXPECT_NEAR(loss_sum, loss_total, 1e-4 * loss_total);
  EXPECT_DOUBLE_EQ(report->agents_per_frame, 3.0);

  DiagnosisOptions ego;
  ego.ego_only = true;
  auto ego_report = DiagnoseDetector(model_, *source_, cfg_, grid_, ego);
  ASSERT_TRUE(ego_report.ok());
  EXPECT_DOUBLE_EQ(ego_report->agents_per_frame, 1.0);
  // The same ground truth scores both.
  for (int c = 0; c < kNumClasses; ++c) {
    EXPECT_EQ(ego_report->anchors[c].gt_boxes, report->anchors[c].gt_boxes);
  }
}

TEST_F(DiagnosisTest, AnOverfittedFrameScoresItsPositiveAnchorsHigh) {
  // A one-frame copy of the tiny scene, learned by heart: afterwards its boxes' positive
  // anchors score above the threshold and its cars are found.
  std::ifstream in("configs/scenes/tiny.yaml");
  std::stringstream text;
  text << in.rdbuf();
  std::string yaml =
      std::regex_replace(text.str(), std::regex("\\nscenarios: \\d+"), "\nscenarios: 1");
  yaml = std::regex_replace(yaml, std::regex("\\nframes_per_scenario: \\d+"),
                            "\nframes_per_scenario: 1");
  const std::string scene = ::testing::TempDir() + "/one_frame.yaml";
  std::ofstream(scene) << yaml;
  auto one = FrameSource::Open("sim:" + scene);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ((*one)->size(), 1u);

  auto before = DiagnoseDetector(model_, **one, cfg_, grid_);
  ASSERT_TRUE(before.ok()) << before.status();
  auto frame = (*one)->Read(0);
  ASSERT_TRUE(frame.ok());
  SampleOptions opts;
  opts.occupancy = true;
  auto sample = BuildSample(*frame, cfg_, grid_, opts);
  ASSERT_TRUE(sample.ok());
  torch::optim::Adam opt(TrainableParameters(model_, 1), torch::optim::AdamOptions(0.002));
  // Rounds of 25 steps until every car's best positive anchor passes the threshold.
  absl::StatusOr<DiagnosisReport> after = before;
  int steps = 0;
  while (steps < 400 && after->anchors[0].gt_top_above_threshold < after->anchors[0].gt_boxes) {
    SetTrainMode(model_, 1);
    for (int k = 0; k < 25; ++k, ++steps) {
      auto terms = ComputeStageLoss(model_, cfg_, {*sample}, 1);
      ASSERT_TRUE(terms.ok()) << terms.status();
      opt.zero_grad();
      terms->total.backward();
      opt.step();
    }
    after = DiagnoseDetector(model_, **one, cfg_, grid_);
    ASSERT_TRUE(after.ok()) << after.status();
  }
  const AnchorClassDiagnosis& car = after->anchors[static_cast<int>(ObjectClass::kVehicle)];
  const AnchorClassDiagnosis& car0 = before->anchors[static_cast<int>(ObjectClass::kVehicle)];
  ASSERT_GT(car.gt_boxes, 0);
  std::printf(
      "%d steps; cars %ld: top>thr %ld -> %ld, cls loss %.4f -> %.4f, recall %.3f -> %.3f\n", steps,
      car.gt_boxes, car0.gt_top_above_threshold, car.gt_top_above_threshold, car0.loss_cls,
      car.loss_cls, before->breakdown.of(ObjectClass::kVehicle).all.Recall(),
      after->breakdown.of(ObjectClass::kVehicle).all.Recall());
  EXPECT_EQ(car.gt_top_above_threshold, car.gt_boxes);
  EXPECT_LT(car.loss_cls, 0.5 * car0.loss_cls);
  EXPECT_GT(after->breakdown.of(ObjectClass::kVehicle).all.Recall(), 0.5);
}

}  // namespace
}  // namespace qv2x
