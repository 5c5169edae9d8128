// The SPEC §8 evaluation protocol on hand-built cases whose AP is worked out by hand, and
// box-file validation.
#include <cmath>
#include <string>
#include <vector>

#include "core/eval/average_precision.h"
#include "core/eval/box_file.h"
#include "core/eval/eval_report.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace qv2x {
namespace {

constexpr double kTol = 1e-12;
constexpr int kVeh = static_cast<int>(ObjectClass::kVehicle);
constexpr int kPed = static_cast<int>(ObjectClass::kPedestrian);
constexpr int kTruck = static_cast<int>(ObjectClass::kTruck);

EvalBox Car(double x, double y, double score = 1.0, ObjectClass cls = ObjectClass::kVehicle) {
  EvalBox b;
  b.cls = cls;
  b.box.x = x;
  b.box.y = y;
  b.box.l = 4;
  b.box.w = 2;
  b.box.h = 1.5;
  b.score = score;
  return b;
}

FrameBoxes Frame(const std::string& name, std::vector<EvalBox> boxes) {
  return FrameBoxes{name, std::move(boxes)};
}

EvalResult Eval(const std::vector<FrameBoxes>& pred, const std::vector<FrameBoxes>& gt,
                ApSortOrder order = ApSortOrder::kGlobal) {
  auto r = EvaluateFrames(pred, gt, order);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : EvalResult{};
}

TEST(VocApTest, AllPointsInterpolation) {
  // mrec [0 .5 .5 1 1], mpre [0 1 .5 2/3 0] -> envelope [1 1 2/3 2/3 0]:
  // AP = .5 * 1 + .5 * 2/3.
  EXPECT_NEAR(VocAllPointsAp({0.5, 0.5, 1.0}, {1.0, 0.5, 2.0 / 3}), 0.5 + 1.0 / 3, kTol);
  // A precision dip is lifted by the later higher precision: .25 * (1 + .75 + .75).
  EXPECT_NEAR(VocAllPointsAp({0.25, 0.5, 0.75}, {1.0, 0.5, 0.75}), 0.625, kTol);
  EXPECT_EQ(VocAllPointsAp({}, {}), 0.0);
}

TEST(RankedApTest, NoGroundTruthOrNoDetectionsIsZero) {
  EXPECT_EQ(RankedAp({1, 0, 1}, 0), 0.0);
  EXPECT_EQ(RankedAp({}, 5), 0.0);
  EXPECT_EQ(RankedAp({0, 0}, 2), 0.0);
  EXPECT_NEAR(RankedAp({1, 1}, 4), 0.5, kTol);  // half the GT found, at precision 1
}

TEST(EvaluateTest, PerfectPredictionsScoreOne) {
  const std::vector<FrameBoxes> gt{
      Frame("a", {Car(0, 0), Car(10, 0), Car(0, 5, 1, ObjectClass::kPedestrian)}),
      Frame("b", {Car(-20, 3), Car(7, -7, 1, ObjectClass::kTruck)})};
  std::vector<FrameBoxes> pred = gt;
  double s = 0.99;
  for (auto& f : pred) {
    for (auto& b : f.boxes) b.score = (s -= 0.1);
  }
  for (ApSortOrder order : {ApSortOrder::kGlobal, ApSortOrder::kFrame}) {
    const EvalResult r = Eval(pred, gt, order);
    for (int c = 0; c < kNumClasses; ++c) {
      for (double ap : r.ap[c]) EXPECT_NEAR(ap, 1.0, kTol) << "class " << c;
    }
    for (double m : r.map) EXPECT_NEAR(m, 1.0, kTol);
    EXPECT_EQ(r.num_gt[kVeh], 3);
    EXPECT_EQ(r.num_gt[kPed], 1);
    EXPECT_EQ(r.num_gt[kTruck], 1);
    EXPECT_EQ(r.num_frames, 2);
  }
}

TEST(EvaluateTest, FalsePositiveRankedAboveTheTruePositive) {
  // Ranked [FP, TP] against 1 GT: rec [0, 1], prec [0, .5] -> AP = 1 * .5.
  const std::vector<FrameBoxes> gt{Frame("a", {Car(0, 0)})};
  const std::vector<FrameBoxes> pred{Frame("a", {Car(0, 0, 0.8), Car(30, 0, 0.9)})};
  const EvalResult r = Eval(pred, gt);
  for (double ap : r.ap[kVeh]) EXPECT_NEAR(ap, 0.5, kTol);
  // Pedestrian and truck have no GT: AP 0, and they count in the mean.
  for (size_t t = 0; t < 3; ++t) {
    EXPECT_EQ(r.ap[kPed][t], 0.0);
    EXPECT_EQ(r.ap[kTruck][t], 0.0);
    EXPECT_NEAR(r.map[t], 0.5 / 3, kTol);
  }
  EXPECT_EQ(r.num_pred[kVeh], 2);
}

TEST(EvaluateTest, EmptyPredictionsScoreZero) {
  const std::vector<FrameBoxes> gt{Frame("a", {Car(0, 0)}), Frame("b", {Car(3, 3)})};
  const EvalResult none = Eval({}, gt);
  const EvalResult empty_frames = Eval({Frame("a", {}), Frame("b", {})}, gt);
  for (const EvalResult& r : {none, empty_frames}) {
    for (int c = 0; c < kNumClasses; ++c) {
      for (double ap : r.ap[c]) EXPECT_EQ(ap, 0.0);
    }
    EXPECT_EQ(r.num_frames, 2);
    EXPECT_EQ(r.num_gt[kVeh], 2);
  }
}

TEST(EvaluateTest, NoGroundTruthDoesNotDivideByZero) {
  const std::vector<FrameBoxes> gt{Frame("a", {}), Frame("b", {})};
  const std::vector<FrameBoxes> pred{Frame("a", {Car(0, 0, 0.9)}),
                                     Frame("b", {Car(1, 1, 0.5, ObjectClass::kTruck)})};
  const EvalResult r = Eval(pred, gt);
  for (int c = 0; c < kNumClasses; ++c) {
    EXPECT_EQ(r.num_gt[c], 0);
    for (double ap : r.ap[c]) {
      EXPECT_FALSE(std::isnan(ap));
      EXPECT_EQ(ap, 0.0);
    }
  }
  for (double m : r.map) EXPECT_EQ(m, 0.0);
  EXPECT_EQ(Eval({}, {}).map, (std::vector<double>{0, 0, 0}));
}

TEST(EvaluateTest, GlobalAndPerFrameOrderDiffer) {
  // Frame a: TP 0.9, FP 0.1; frame b: TP 0.8; one GT in each.
  // Per-frame order [TP .9, FP .1, TP .8]: rec [.5 .5 1], prec [1 .5 2/3] -> 5/6.
  // Global order   [TP .9, TP .8, FP .1]: rec [.5 1 1], prec [1 1 2/3]    -> 1.
  const std::vector<FrameBoxes> gt{Frame("a", {Car(0, 0)}), Frame("b", {Car(0, 0)})};
  const std::vector<FrameBoxes> pred{Frame("a", {Car(40, 0, 0.1), Car(0, 0, 0.9)}),
                                     Frame("b", {Car(0, 0, 0.8)})};
  const EvalResult global = Eval(pred, gt, ApSortOrder::kGlobal);
  const EvalResult frame = Eval(pred, gt, ApSortOrder::kFrame);
  for (size_t t = 0; t < 3; ++t) {
    EXPECT_NEAR(global.ap[kVeh][t], 1.0, kTol);
    EXPECT_NEAR(frame.ap[kVeh][t], 5.0 / 6, kTol);
  }
}

TEST(EvaluateTest, PerFrameOrderFollowsTheGroundTruthFileOrder) {
  // Same boxes, frames listed b then a in the GT: [TP .8, TP .9, FP .1] -> AP 1.
  const std::vector<FrameBoxes> gt{Frame("b", {Car(0, 0)}), Frame("a", {Car(0, 0)})};
  const std::vector<FrameBoxes> pred{Frame("a", {Car(40, 0, 0.1), Car(0, 0, 0.9)}),
                                     Frame("b", {Car(0, 0, 0.8)})};
  EXPECT_NEAR(Eval(pred, gt, ApSortOrder::kFrame).ap[kVeh][1], 1.0, kTol);
}

TEST(EvaluateTest, DuplicateDetectionOfOneBoxIsAFalsePositive) {
  // GT A at 0 and B at 20; detections A .9, A again .8, B .7 -> [TP, FP, TP]:
  // rec [.5 .5 1], prec [1 .5 2/3] -> 5/6 (it would be 1 if the duplicate counted).
  const std::vector<FrameBoxes> gt{Frame("a", {Car(0, 0), Car(20, 0)})};
  const std::vector<FrameBoxes> pred{
      Frame("a", {Car(0, 0, 0.9), Car(0.1, 0, 0.8), Car(20, 0, 0.7)})};
  const EvalResult r = Eval(pred, gt);
  for (double ap : r.ap[kVeh]) EXPECT_NEAR(ap, 5.0 / 6, kTol);
}

TEST(EvaluateTest, ThresholdsUseRotatedIou) {
  // Shifted by half its length: IoU 1/3 -> TP at 0.3 only.
  const std::vector<FrameBoxes> gt{Frame("a", {Car(0, 0)})};
  const EvalResult half = Eval({Frame("a", {Car(2, 0, 0.5)})}, gt);
  EXPECT_EQ(half.ap[kVeh], (std::vector<double>{1, 0, 0}));
  // The same box turned 90°: a 2 x 2 cross-over, IoU 4/12.
  EvalBox turned = Car(0, 0, 0.5);
  turned.box.yaw = kPi / 2;
  EXPECT_EQ(Eval({Frame("a", {turned})}, gt).ap[kVeh], (std::vector<double>{1, 0, 0}));
  turned.box.yaw = kPi;  // same footprint
  EXPECT_EQ(Eval({Frame("a", {turned})}, gt).ap[kVeh], (std::vector<double>{1, 1, 1}));
}

TEST(EvaluateTest, GreedyMatchTakesTheHighestIouGroundTruth) {
  // GT at x = 0 and x = 3 (4 x 2 boxes). The detection at 1.8 overlaps both: IoU 4.4/11.6
  // = 0.379 with the first and 5.6/10.4 = 0.538 with the second, so it takes the second
  // and leaves the first to the detection at 0.
  //   0.3, 0.5: [TP, TP] -> 1.
  //   0.7: 0.538 is too low -> [FP, TP] against 2 GT: rec [0 .5], prec [0 .5] -> .25.
  // Taking the first GT above the threshold instead would make the second detection an
  // FP at 0.3 (IoU 1/7 with the GT at 3) and give 0.5 there.
  const std::vector<FrameBoxes> gt{Frame("a", {Car(0, 0), Car(3, 0)})};
  const std::vector<FrameBoxes> pred{Frame("a", {Car(1.8, 0, 0.9), Car(0, 0, 0.8)})};
  const EvalResult r = Eval(pred, gt);
  EXPECT_NEAR(r.ap[kVeh][0], 1.0, kTol);
  EXPECT_NEAR(r.ap[kVeh][1], 1.0, kTol);
  EXPECT_NEAR(r.ap[kVeh][2], 0.25, kTol);
}

TEST(EvaluateTest, ClassesOnlyMatchTheirOwnGroundTruth) {
  const std::vector<FrameBoxes> gt{Frame("a", {Car(0, 0, 1, ObjectClass::kPedestrian)})};
  const EvalResult r = Eval({Frame("a", {Car(0, 0, 0.9)})}, gt);
  for (int c = 0; c < kNumClasses; ++c) {
    for (double ap : r.ap[c]) EXPECT_EQ(ap, 0.0);
  }
  EXPECT_EQ(r.num_pred[kVeh], 1);
  EXPECT_EQ(r.num_gt[kPed], 1);
}

TEST(EvaluateTest, FrameBookkeeping) {
  const std::vector<FrameBoxes> gt{Frame("a", {Car(0, 0)}), Frame("b", {Car(0, 0)})};
  // A GT frame without predictions counts as no detections: only frame a is found.
  const EvalResult r = Eval({Frame("a", {Car(0, 0, 0.9)})}, gt);
  EXPECT_NEAR(r.ap[kVeh][0], 0.5, kTol);
  // A prediction frame the GT lacks is an error naming it.
  auto bad = EvaluateFrames({Frame("zz9", {Car(0, 0, 0.9)})}, gt, ApSortOrder::kGlobal);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("\"zz9\""), std::string::npos);
  EXPECT_FALSE(EvaluateFrames({}, {Frame("a", {}), Frame("a", {})}, ApSortOrder::kGlobal).ok());
  EXPECT_FALSE(EvaluateFrames({}, gt, ApSortOrder::kGlobal, {0.5, 1.5}).ok());
}

TEST(ApAccumulatorTest, OnlineQueriesMatchBatchEvaluation) {
  const std::vector<FrameBoxes> gt{Frame("a", {Car(0, 0)}), Frame("b", {Car(0, 0)})};
  const std::vector<FrameBoxes> pred{Frame("a", {Car(40, 0, 0.1), Car(0, 0, 0.9)}),
                                     Frame("b", {Car(0, 0, 0.8)})};
  ApAccumulator acc;
  acc.AddFrame(pred[0].boxes, gt[0].boxes);
  EXPECT_EQ(acc.num_frames(), 1);
  // After frame a: [TP .9, FP .1] against 1 GT -> 1.
  EXPECT_NEAR(acc.Ap(ObjectClass::kVehicle, 1, ApSortOrder::kGlobal), 1.0, kTol);
  acc.AddFrame(pred[1].boxes, gt[1].boxes);
  EXPECT_NEAR(acc.Ap(ObjectClass::kVehicle, 1, ApSortOrder::kGlobal), 1.0, kTol);
  EXPECT_NEAR(acc.Ap(ObjectClass::kVehicle, 1, ApSortOrder::kFrame), 5.0 / 6, kTol);
  const EvalResult online = acc.Result(ApSortOrder::kFrame);
  const EvalResult batch = Eval(pred, gt, ApSortOrder::kFrame);
  EXPECT_EQ(online.ap, batch.ap);
  EXPECT_EQ(online.map, batch.map);
  EXPECT_EQ(acc.Ap(ObjectClass::kVehicle, 7, ApSortOrder::kGlobal), 0.0);  // no such threshold
  acc.Reset();
  EXPECT_EQ(acc.num_frames(), 0);
  EXPECT_EQ(acc.Ap(ObjectClass::kVehicle, 0, ApSortOrder::kGlobal), 0.0);
}

TEST(ApAccumulatorTest, RollingWindowForgetsOldFrames) {
  ApAccumulator acc(DefaultIouThresholds(), /*window_frames=*/2);
  acc.AddFrame({}, {Car(0, 0)});                // a miss
  acc.AddFrame({Car(0, 0, 0.9)}, {Car(0, 0)});  // a hit
  EXPECT_NEAR(acc.Ap(ObjectClass::kVehicle, 0, ApSortOrder::kGlobal), 0.5, kTol);
  acc.AddFrame({Car(0, 0, 0.8)}, {Car(0, 0)});  // the miss leaves the window
  EXPECT_EQ(acc.num_frames(), 2);
  EXPECT_NEAR(acc.Ap(ObjectClass::kVehicle, 0, ApSortOrder::kGlobal), 1.0, kTol);
}

TEST(ApAccumulatorTest, CustomThresholds) {
  ApAccumulator acc({0.25, 0.4});
  acc.AddFrame({Car(2, 0, 0.5)}, {Car(0, 0)});  // IoU 1/3
  const EvalResult r = acc.Result(ApSortOrder::kGlobal);
  EXPECT_EQ(r.iou_thresholds, (std::vector<double>{0.25, 0.4}));
  EXPECT_EQ(r.ap[kVeh], (std::vector<double>{1, 0}));
}

TEST(EvalReportTest, JsonHasTheDocumentedShape) {
  const std::vector<FrameBoxes> gt{Frame("a", {Car(0, 0)})};
  const EvalResult r = Eval({Frame("a", {Car(2, 0, 0.5)})}, gt);
  const auto j = nlohmann::json::parse(EvalResultJson(r));
  ASSERT_EQ(j.size(), 2u);
  for (const char* cls : {"vehicle", "pedestrian", "truck"}) {
    ASSERT_TRUE(j["ap"].contains(cls)) << cls;
    EXPECT_EQ(j["ap"][cls].size(), 3u);
  }
  EXPECT_EQ(j["ap"]["vehicle"]["0.3"].get<double>(), 1.0);
  EXPECT_EQ(j["ap"]["vehicle"]["0.5"].get<double>(), 0.0);
  EXPECT_NEAR(j["map"]["0.3"].get<double>(), 1.0 / 3, kTol);
  EXPECT_EQ(j["map"]["0.7"].get<double>(), 0.0);
  const std::string table = EvalResultTable(r, ApSortOrder::kGlobal);
  EXPECT_NE(table.find("vehicle"), std::string::npos);
  EXPECT_NE(table.find("1.0000"), std::string::npos);
  EXPECT_NE(table.find("0.3333"), std::string::npos);  // the mAP at 0.3
}

// --- Box files.

TEST(BoxFileTest, ParsesTheDocumentedExample) {
  const std::string text = R"({"frames": [{"frame": "000001", "boxes": [{"class": "vehicle",
      "x": 1, "y": -2, "z": 0.5, "l": 4, "w": 2, "h": 1.5, "yaw": 0.25, "score": 0.9}]},
      {"frame": "000002", "boxes": []}]})";
  auto f = ParseBoxFile(text, BoxFileKind::kPrediction);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->size(), 2u);
  EXPECT_EQ((*f)[0].frame, "000001");
  ASSERT_EQ((*f)[0].boxes.size(), 1u);
  const EvalBox& b = (*f)[0].boxes[0];
  EXPECT_EQ(b.cls, ObjectClass::kVehicle);
  EXPECT_EQ(b.box.x, 1);
  EXPECT_EQ(b.box.y, -2);
  EXPECT_EQ(b.box.z, 0.5);
  EXPECT_EQ(b.box.l, 4);
  EXPECT_EQ(b.box.w, 2);
  EXPECT_EQ(b.box.h, 1.5);
  EXPECT_EQ(b.box.yaw, 0.25);
  EXPECT_EQ(b.score, 0.9);
  EXPECT_TRUE((*f)[1].boxes.empty());
}

TEST(BoxFileTest, GroundTruthNeedsNoScoreAndRoundTrips) {
  const std::string gt = R"({"frames": [{"frame": "7", "boxes": [{"class": "truck", "x": 0,
      "y": 0, "z": 0, "l": 8, "w": 3, "h": 3, "yaw": -1.5}]}]})";
  auto g = ParseBoxFile(gt, BoxFileKind::kGroundTruth);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ((*g)[0].boxes[0].cls, ObjectClass::kTruck);
  EXPECT_FALSE(ParseBoxFile(gt, BoxFileKind::kPrediction).ok());  // predictions need a score

  std::vector<FrameBoxes> frames{Frame("x", {Car(1.25, -3.5, 0.625, ObjectClass::kPedestrian)})};
  frames[0].boxes[0].box.yaw = 0.1;
  auto back =
      ParseBoxFile(BoxFileToJson(frames, BoxFileKind::kPrediction), BoxFileKind::kPrediction);
  ASSERT_TRUE(back.ok()) << back.status();
  const EvalBox& b = (*back)[0].boxes[0];
  EXPECT_EQ(b.cls, ObjectClass::kPedestrian);
  EXPECT_EQ(b.box.x, 1.25);
  EXPECT_EQ(b.box.yaw, 0.1);
  EXPECT_EQ(b.score, 0.625);
  const auto gt_json = nlohmann::json::parse(BoxFileToJson(frames, BoxFileKind::kGroundTruth));
  EXPECT_FALSE(gt_json["frames"][0]["boxes"][0].contains("score"));
}

TEST(BoxFileTest, ErrorsNameTheProblem) {
  const std::string box_ok = R"("x": 0, "y": 0, "z": 0, "l": 4, "w": 2, "h": 1.5, "yaw": 0)";
  auto wrap = [&](const std::string& box) {
    return std::string(R"({"frames": [{"frame": "f1", "boxes": [)") + box + "]}]}";
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"frames\": [", "malformed JSON"},
      {"[1, 2]", "expected an object"},
      {"{}", "frames: missing"},
      {R"({"frames": {}})", "frames: expected an array"},
      {R"({"frames": [{"boxes": []}]})", "frames[0].frame: missing"},
      {R"({"frames": [{"frame": 3, "boxes": []}]})", "frames[0].frame: expected a string"},
      {R"({"frames": [{"frame": "a"}]})", "frames[0].boxes: missing"},
      {R"({"frames": [{"frame": "a", "boxes": []}, {"frame": "a", "boxes": []}]})",
       "duplicate frame \"a\""},
      {wrap(R"({"class": "car", )" + box_ok + R"(, "score": 1})"), "unknown class \"car\""},
      {wrap(R"({)" + box_ok + R"(, "score": 1})"), "boxes[0].class: missing"},
      {wrap(R"({"class": "vehicle", "x": 0, "y": 0, "z": 0, "l": -4, "w": 2, "h": 1.5,
              "yaw": 0, "score": 1})"),
       "boxes[0].l: must be > 0"},
      {wrap(R"({"class": "vehicle", "x": 0, "y": 0, "z": 0, "l": 4, "w": 0, "h": 1.5,
              "yaw": 0, "score": 1})"),
       "boxes[0].w: must be > 0"},
      {wrap(R"({"class": "vehicle", "x": 0, "y": 0, "z": 0, "l": 4, "w": 2, "h": 1.5,
              "score": 1})"),
       "boxes[0].yaw: missing"},
      {wrap(R"({"class": "vehicle", "x": "0", "y": 0, "z": 0, "l": 4, "w": 2, "h": 1.5,
              "yaw": 0, "score": 1})"),
       "boxes[0].x: expected a number"},
      {wrap(R"({"class": "vehicle", "x": 1e999, "y": 0, "z": 0, "l": 4, "w": 2, "h": 1.5,
              "yaw": 0, "score": 1})"),
       ""},  // overflow: rejected either as malformed or as non-finite
      {wrap(R"({"class": "vehicle", )" + box_ok + "}"), "boxes[0].score: missing"},
  };
  for (const auto& [json, needle] : cases) {
    auto r = ParseBoxFile(json, BoxFileKind::kPrediction, "pred.json");
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << json;
    const std::string msg(r.status().message());
    EXPECT_EQ(msg.rfind("pred.json: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;  // one line
  }
}

TEST(BoxFileTest, MissingFileIsNotFound) {
  auto r = LoadBoxFile("/nonexistent/qv2x/pred.json", BoxFileKind::kPrediction);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace qv2x
