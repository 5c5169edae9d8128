// The fusion baselines runner on the tiny preset: its no-fusion and intermediate rows are
// exactly what the evaluator (training's validation, the old `qv2x infer`) gives, every row
// is scored on the same ground truth, and the bytes are those of the documented messages.
#include <torch/torch.h>

#include <cmath>

#include "core/baselines/baseline_eval.h"
#include "core/baselines/message_frame.h"
#include "core/training/evaluator.h"
#include "gtest/gtest.h"

namespace qv2x::baselines {
namespace {

class BaselineEval : public ::testing::Test {
 protected:
  void SetUp() override {
    // A low threshold so that the untrained model yields boxes to compare.
    auto cfg = LoadStageConfig("configs/tiny/stage3.yaml",
                               {"postprocess.target_args.score_threshold=0.001"});
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    cfg_ = *cfg;
    torch::manual_seed(3);
    auto model = MakeDetector(cfg_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *model;
    auto grid = MakeAnchorGrid(cfg_);
    ASSERT_TRUE(grid.ok()) << grid.status();
    grid_ = *grid;
    auto source = FrameSource::Open("sim:configs/scenes/tiny.yaml", 1);
    ASSERT_TRUE(source.ok()) << source.status();
    source_ = std::move(*source);
  }

  static void ExpectSameBoxes(const std::vector<FrameBoxes>& a, const std::vector<FrameBoxes>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t f = 0; f < a.size(); ++f) {
      EXPECT_EQ(a[f].frame, b[f].frame);
      ASSERT_EQ(a[f].boxes.size(), b[f].boxes.size()) << a[f].frame;
      for (size_t i = 0; i < a[f].boxes.size(); ++i) {
        const EvalBox &x = a[f].boxes[i], &y = b[f].boxes[i];
        EXPECT_EQ(x.cls, y.cls);
        EXPECT_NEAR(x.box.x, y.box.x, 1e-4);
        EXPECT_NEAR(x.box.y, y.box.y, 1e-4);
        EXPECT_NEAR(x.box.yaw, y.box.yaw, 1e-4);
        EXPECT_NEAR(x.score, y.score, 1e-5);
      }
    }
  }

  StageConfig cfg_;
  Detector model_{nullptr};
  AnchorGrid grid_;
  std::unique_ptr<FrameSource> source_;
};

TEST_F(BaselineEval, NoneAndIntermediateMatchTheEvaluator) {
  BaselineOptions options;
  options.methods = {FusionMethod::kNone, FusionMethod::kLate, FusionMethod::kEarly,
                     FusionMethod::kIntermediate, FusionMethod::kIntermediateNoCodebook};
  auto run = EvaluateFusionBaselines(model_, *source_, cfg_, grid_, options);
  ASSERT_TRUE(run.ok()) << run.status();
  auto coop = EvaluateDetector(model_, *source_, cfg_, grid_);
  ASSERT_TRUE(coop.ok()) << coop.status();
  EvalOptions ego_only;
  ego_only.ego_only = true;
  auto ego = EvaluateDetector(model_, *source_, cfg_, grid_, ego_only);
  ASSERT_TRUE(ego.ok()) << ego.status();

  ASSERT_EQ(run->methods.size(), 5u);
  size_t boxes = 0;
  for (const FrameBoxes& f : coop->predictions) boxes += f.boxes.size();
  ASSERT_GT(boxes, 0u) << "nothing to compare";
  ExpectSameBoxes(run->methods[3].predictions, coop->predictions);
  ExpectSameBoxes(run->methods[0].predictions, ego->predictions);
  ExpectSameBoxes(run->ground_truth, coop->ground_truth);
  EXPECT_EQ(run->agents_per_frame, coop->agents_per_frame);
  for (const MethodRun& m : run->methods) {
    EXPECT_EQ(m.result.num_gt, coop->result.num_gt) << FusionMethodName(m.method);
    EXPECT_EQ(m.predictions.size(), source_->size());
  }
  // Bypassing the codebook changes what the heads see.
  bool differs = false;
  for (size_t f = 0; f < source_->size(); ++f) {
    const auto &a = run->methods[3].predictions[f].boxes, &b = run->methods[4].predictions[f].boxes;
    differs |= a.size() != b.size() || (!a.empty() && a[0].score != b[0].score);
  }
  EXPECT_TRUE(differs);
}

TEST_F(BaselineEval, BytesAreThoseOfTheDocumentedMessages) {
  BaselineOptions options;
  options.methods = {FusionMethod::kNone, FusionMethod::kLate, FusionMethod::kIntermediate,
                     FusionMethod::kIntermediateNoCodebook};
  auto run = EvaluateFusionBaselines(model_, *source_, cfg_, grid_, options);
  ASSERT_TRUE(run.ok()) << run.status();
  const uint64_t others =
      static_cast<uint64_t>(std::lround((run->agents_per_frame - 1) * run->frames));
  ASSERT_GT(others, 0u);
  const MethodRun &none = run->methods[0], &late = run->methods[1], &inter = run->methods[2],
                  &fp32 = run->methods[3];
  EXPECT_EQ(none.raw.messages, 0u);
  for (const MethodRun* m : {&late, &inter, &fp32}) EXPECT_EQ(m->raw.messages, others);
  // The tiny preset: 16 channels on a 16 x 32 map; 16 codes = 4-bit indices.
  EXPECT_EQ(run->fp32_features.mean, kMessageHeaderBytes + 6 + 16 * 16 * 32 * 4);
  EXPECT_EQ(fp32.raw.mean, run->fp32_features.mean);
  EXPECT_EQ(inter.raw.mean, kMessageHeaderBytes + 16 * 32 * 4 / 8);
  // Boxes: the header, a count and 17 bytes each, so (mean - 65) / 17 boxes a message.
  const double per_box = (late.raw.mean - kMessageHeaderBytes - 2) / 17;
  EXPECT_GE(per_box, 0);
  EXPECT_NEAR(per_box * late.raw.messages, std::round(per_box * late.raw.messages), 1e-6);

  // A sizer for the real wire message replaces header + payload for index messages only.
  options.index_message_bytes = [](const IndexMessage& m) {
    return m.indices->payload.size() + 1000;
  };
  auto sized = EvaluateFusionBaselines(model_, *source_, cfg_, grid_, options);
  ASSERT_TRUE(sized.ok()) << sized.status();
  EXPECT_EQ(sized->methods[2].raw.mean, inter.raw.mean - kMessageHeaderBytes + 1000);
  EXPECT_EQ(sized->methods[1].raw.mean, late.raw.mean);
}

}  // namespace
}  // namespace qv2x::baselines
