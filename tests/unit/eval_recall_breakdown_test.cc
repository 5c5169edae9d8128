// Recall by distance and visibility, true / false positive score histograms, misses detected
// as another class, and the diagnosis report's JSON, on hand-built frames.
#include "core/eval/recall_breakdown.h"

#include <vector>

#include "core/eval/diagnosis_report.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace qv2x {
namespace {

EvalBox Box(ObjectClass cls, double x, double y, double l, double w, double score = 1.0) {
  EvalBox b;
  b.cls = cls;
  b.box = {x, y, 0, l, w, 1.5, 0};
  b.score = score;
  return b;
}

BreakdownGt Gt(ObjectClass cls, double x, double y, double l, double w, bool ego = true) {
  return {Box(cls, x, y, l, w), ego};
}

RecallBreakdown Make(double iou = 0.5) {
  auto b = RecallBreakdown::Create(iou, {0, 10, 20});
  EXPECT_TRUE(b.ok()) << b.status();
  return *std::move(b);
}

TEST(RecallBreakdownTest, RecallByDistanceAndVisibility) {
  RecallBreakdown b = Make();
  // Cars at 5 m (found), 15 m (found, only others saw it), 25 m (missed), 12 m (missed,
  // only others). One false positive far from everything.
  const std::vector<BreakdownGt> gt = {
      Gt(ObjectClass::kVehicle, 5, 0, 4, 2), Gt(ObjectClass::kVehicle, 0, 15, 4, 2, false),
      Gt(ObjectClass::kVehicle, 25, 0, 4, 2), Gt(ObjectClass::kVehicle, -12, 0, 4, 2, false)};
  const std::vector<EvalBox> pred = {Box(ObjectClass::kVehicle, 5.1, 0, 4, 2, 0.93),
                                     Box(ObjectClass::kVehicle, 0, 15.2, 4, 2, 0.55),
                                     Box(ObjectClass::kVehicle, -40, -40, 4, 2, 0.31)};
  b.AddFrame(pred, gt);
  const ClassBreakdown& car = b.of(ObjectClass::kVehicle);
  EXPECT_EQ(car.all.gt, 4);
  EXPECT_EQ(car.all.found, 2);
  ASSERT_EQ(car.by_distance.size(), 3u);
  EXPECT_EQ(car.by_distance[0].gt, 1);  // 0-10 m
  EXPECT_EQ(car.by_distance[0].found, 1);
  EXPECT_EQ(car.by_distance[1].gt, 2);  // 10-20 m: 15 and 12
  EXPECT_EQ(car.by_distance[1].found, 1);
  EXPECT_EQ(car.by_distance[2].gt, 1);  // 20+ m
  EXPECT_EQ(car.by_distance[2].found, 0);
  EXPECT_EQ(car.seen_by_ego.gt, 2);
  EXPECT_EQ(car.seen_by_ego.found, 1);
  EXPECT_EQ(car.only_others.gt, 2);
  EXPECT_EQ(car.only_others.found, 1);
  EXPECT_DOUBLE_EQ(car.only_others.Recall(), 0.5);
  EXPECT_EQ(car.tp_scores.counts[9], 1);  // 0.93
  EXPECT_EQ(car.tp_scores.counts[5], 1);  // 0.55
  EXPECT_EQ(car.fp_scores.counts[3], 1);  // 0.31
  EXPECT_EQ(car.fp_scores.Total(), 1);
  EXPECT_EQ(b.of(ObjectClass::kTruck).all.gt, 0);
  EXPECT_DOUBLE_EQ(b.of(ObjectClass::kTruck).all.Recall(), 0.0);
}

TEST(RecallBreakdownTest, EachBoxMatchesOnceAndOnlyItsOwnClass) {
  RecallBreakdown b = Make();
  // Two detections on one car: the higher score takes it, the other is a false positive.
  // A truck covered only by a car-sized vehicle box centred on it: missed, detected as a
  // vehicle (IoU 0.33 < 0.5 would not tell).
  const std::vector<BreakdownGt> gt = {Gt(ObjectClass::kVehicle, 5, 5, 4, 2),
                                       Gt(ObjectClass::kTruck, -5, -5, 8, 3)};
  const std::vector<EvalBox> pred = {Box(ObjectClass::kVehicle, 5, 5, 4, 2, 0.4),
                                     Box(ObjectClass::kVehicle, 5, 5.1, 4, 2, 0.8),
                                     Box(ObjectClass::kVehicle, -5, -5, 4, 2, 0.7)};
  b.AddFrame(pred, gt);
  const ClassBreakdown& car = b.of(ObjectClass::kVehicle);
  EXPECT_EQ(car.all.found, 1);
  EXPECT_EQ(car.tp_scores.counts[8], 1);
  EXPECT_EQ(car.fp_scores.counts[4], 1);
  EXPECT_EQ(car.fp_scores.counts[7], 1);  // the box on the truck
  const ClassBreakdown& truck = b.of(ObjectClass::kTruck);
  EXPECT_EQ(truck.all.gt, 1);
  EXPECT_EQ(truck.all.found, 0);
  EXPECT_EQ(truck.missed_as[static_cast<int>(ObjectClass::kVehicle)], 1);
  EXPECT_EQ(truck.missed_as[static_cast<int>(ObjectClass::kPedestrian)], 0);
  // The found car has no "missed as" entries.
  for (int64_t n : car.missed_as) EXPECT_EQ(n, 0);
}

TEST(RecallBreakdownTest, BadOptionsAreRefused) {
  EXPECT_FALSE(RecallBreakdown::Create(0.0, {0, 10}).ok());
  EXPECT_FALSE(RecallBreakdown::Create(1.5, {0, 10}).ok());
  EXPECT_FALSE(RecallBreakdown::Create(0.5, {}).ok());
  EXPECT_FALSE(RecallBreakdown::Create(0.5, {5, 10}).ok());
  EXPECT_FALSE(RecallBreakdown::Create(0.5, {0, 10, 10}).ok());
  RecallBreakdown b = Make();
  EXPECT_EQ(b.DistanceBin(3, 4), 0);    // 5 m
  EXPECT_EQ(b.DistanceBin(6, 8), 1);    // exactly 10 m: the upper bin
  EXPECT_EQ(b.DistanceBin(100, 0), 2);  // open-ended last bin
}

TEST(UnitHistogramTest, BinsClampAndSkipNan) {
  UnitHistogram h;
  for (double v : {0.0, 0.05, 0.1, 0.999, 1.0, 1.7, -0.2, std::nan("")}) h.Add(v);
  EXPECT_EQ(h.counts[0], 3);  // 0, 0.05, -0.2
  EXPECT_EQ(h.counts[1], 1);
  EXPECT_EQ(h.counts[9], 3);  // 0.999, 1.0, 1.7
  EXPECT_EQ(h.Total(), 7);
}

TEST(DiagnosisReportTest, JsonCarriesPerClassCountsPerFrame) {
  DiagnosisReport r(Make());
  r.source = "sim:configs/scenes/tiny.yaml";
  r.frames = 4;
  r.score_threshold = 0.2;
  AnchorClassDiagnosis& truck = r.anchors[static_cast<int>(ObjectClass::kTruck)];
  truck.has_anchors = true;
  truck.gt_boxes = 6;
  truck.positives = 30;
  truck.gt_forced_only = 2;
  truck.loss_cls = 0.8;
  truck.gt_top_score.Add(0.15);
  r.breakdown.AddFrame({}, {Gt(ObjectClass::kTruck, 12, 0, 8, 3, false)});
  const nlohmann::json j = nlohmann::json::parse(DiagnosisJson(r));
  const nlohmann::json& t = j["classes"]["truck"];
  EXPECT_DOUBLE_EQ(t["gt_per_frame"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(t["assignment"]["positives_per_frame"].get<double>(), 7.5);
  EXPECT_DOUBLE_EQ(t["assignment"]["positives_per_gt"].get<double>(), 5.0);
  EXPECT_EQ(t["assignment"]["gt_forced_only"].get<int>(), 2);
  EXPECT_DOUBLE_EQ(t["loss_per_frame"]["cls"].get<double>(), 0.2);
  EXPECT_EQ(t["scores"]["gt_top_score_histogram"][1].get<int>(), 1);
  EXPECT_EQ(t["recall"]["only_others"]["gt"].get<int>(), 1);
  EXPECT_EQ(t["recall"]["by_distance_m"]["10-20"]["gt"].get<int>(), 1);
  EXPECT_TRUE(t["recall"]["by_distance_m"].contains("20+"));
  EXPECT_FALSE(j["classes"]["vehicle"]["has_anchors"].get<bool>());
  const std::string table = DiagnosisTable(r);
  EXPECT_NE(table.find("truck"), std::string::npos);
  EXPECT_NE(table.find("4 frames"), std::string::npos);
}

}  // namespace
}  // namespace qv2x
