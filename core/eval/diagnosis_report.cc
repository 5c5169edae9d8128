#include "core/eval/diagnosis_report.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace qv2x {
namespace {

nlohmann::json HistogramJson(const UnitHistogram& h) {
  return nlohmann::json(std::vector<int64_t>(h.counts.begin(), h.counts.end()));
}

nlohmann::json RecallJson(const RecallCount& r) {
  return {{"gt", r.gt}, {"found", r.found}, {"recall", r.Recall()}};
}

double PerFrame(double v, int64_t frames) { return frames > 0 ? v / frames : 0.0; }

std::string BinName(const std::vector<double>& edges, size_t i) {
  return i + 1 < edges.size() ? absl::StrFormat("%g-%g", edges[i], edges[i + 1])
                              : absl::StrFormat("%g+", edges[i]);
}

}  // namespace

std::string DiagnosisJson(const DiagnosisReport& r) {
  nlohmann::json j;
  j["source"] = r.source;
  j["frames"] = r.frames;
  j["ego_only"] = r.ego_only;
  j["agents_per_frame"] = r.agents_per_frame;
  j["score_threshold"] = r.score_threshold;
  j["iou_threshold"] = r.breakdown.iou_threshold();
  j["histogram_bins"] = "10 bins of 0.1 over [0, 1]";
  const auto& edges = r.breakdown.distance_edges_m();
  nlohmann::json classes = nlohmann::json::object();
  for (int c = 0; c < kNumClasses; ++c) {
    const ObjectClass cls = static_cast<ObjectClass>(c);
    const AnchorClassDiagnosis& a = r.anchors[c];
    const ClassBreakdown& b = r.breakdown.of(cls);
    nlohmann::json k;
    k["has_anchors"] = a.has_anchors;
    k["gt_boxes"] = a.gt_boxes;
    k["gt_per_frame"] = PerFrame(a.gt_boxes, r.frames);
    k["assignment"] = {
        {"positives_per_frame", PerFrame(a.positives, r.frames)},
        {"ignored_per_frame", PerFrame(a.ignored, r.frames)},
        {"positives_per_gt", a.gt_boxes > 0 ? static_cast<double>(a.positives) / a.gt_boxes : 0},
        {"gt_no_overlap", a.gt_no_overlap},
        {"gt_forced_only", a.gt_forced_only},
        {"gt_unassigned", a.gt_unassigned},
        {"best_anchor_iou_histogram", HistogramJson(a.best_anchor_iou)}};
    k["loss_per_frame"] = {{"cls", PerFrame(a.loss_cls, r.frames)},
                           {"reg", PerFrame(a.loss_reg, r.frames)},
                           {"dir", PerFrame(a.loss_dir, r.frames)}};
    k["scores"] = {
        {"gt_top_score_histogram", HistogramJson(a.gt_top_score)},
        {"gt_top_score_above_threshold", a.gt_top_above_threshold},
        {"negatives_above_threshold_per_frame", PerFrame(a.negatives_above_threshold, r.frames)},
        {"candidates_per_frame", PerFrame(a.candidates, r.frames)},
        {"detections_per_frame", PerFrame(a.detections, r.frames)},
        {"tp_score_histogram", HistogramJson(b.tp_scores)},
        {"fp_score_histogram", HistogramJson(b.fp_scores)}};
    nlohmann::json by_distance = nlohmann::json::object();
    for (size_t i = 0; i < b.by_distance.size(); ++i) {
      by_distance[BinName(edges, i)] = RecallJson(b.by_distance[i]);
    }
    nlohmann::json missed_as = nlohmann::json::object();
    for (int o = 0; o < kNumClasses; ++o) {
      if (o != c) missed_as[ClassName(static_cast<ObjectClass>(o))] = b.missed_as[o];
    }
    k["recall"] = {{"all", RecallJson(b.all)},
                   {"by_distance_m", by_distance},
                   {"seen_by_ego", RecallJson(b.seen_by_ego)},
                   {"only_others", RecallJson(b.only_others)},
                   {"missed_but_detected_as", missed_as}};
    nlohmann::json ap = nlohmann::json::object();
    for (size_t t = 0; t < r.ap.iou_thresholds.size(); ++t) {
      ap[absl::StrFormat("%g", r.ap.iou_thresholds[t])] = r.ap.ap[c][t];
    }
    k["ap"] = ap;
    classes[ClassName(cls)] = k;
  }
  j["classes"] = classes;
  return j.dump(2);
}

std::string DiagnosisTable(const DiagnosisReport& r) {
  std::string out =
      absl::StrFormat("%-10s %7s %7s %6s %7s %8s %9s %7s %7s %6s %6s %6s %6s\n", "class", "gt/fr",
                      "pos/fr", "forced", "cls/fr", "reg/fr", "top>thr", "cand/fr", "det/fr",
                      "recall", "ego", "others", "AP");
  // AP is computed at 0.3 / 0.5 / 0.7: show the threshold nearest the recall IoU.
  const double iou = r.breakdown.iou_threshold();
  size_t t_index = 0;
  for (size_t t = 1; t < r.ap.iou_thresholds.size(); ++t) {
    if (std::abs(r.ap.iou_thresholds[t] - iou) < std::abs(r.ap.iou_thresholds[t_index] - iou)) {
      t_index = t;
    }
  }
  const double ap_iou = t_index < r.ap.iou_thresholds.size() ? r.ap.iou_thresholds[t_index] : 0;
  for (int c = 0; c < kNumClasses; ++c) {
    const AnchorClassDiagnosis& a = r.anchors[c];
    const ClassBreakdown& b = r.breakdown.of(static_cast<ObjectClass>(c));
    const double ap = t_index < r.ap.ap[c].size() ? r.ap.ap[c][t_index] : 0.0;
    absl::StrAppend(
        &out, absl::StrFormat(
                  "%-10s %7.2f %7.2f %5.0f%% %7.3f %8.3f %8.0f%% %7.2f %7.2f %6.3f %6.3f %6.3f "
                  "%6.3f\n",
                  ClassName(static_cast<ObjectClass>(c)), PerFrame(a.gt_boxes, r.frames),
                  PerFrame(a.positives, r.frames),
                  a.gt_boxes > 0 ? 100.0 * a.gt_forced_only / a.gt_boxes : 0.0,
                  PerFrame(a.loss_cls, r.frames), PerFrame(a.loss_reg, r.frames),
                  a.gt_boxes > 0 ? 100.0 * a.gt_top_above_threshold / a.gt_boxes : 0.0,
                  PerFrame(a.candidates, r.frames), PerFrame(a.detections, r.frames),
                  b.all.Recall(), b.seen_by_ego.Recall(), b.only_others.Recall(), ap));
  }
  absl::StrAppend(&out, absl::StrFormat("%d frames (%s, %.2f agents/frame); recall at IoU %g, AP "
                                        "at IoU %g, score threshold %g.\n",
                                        r.frames, r.ego_only ? "ego only" : "cooperative",
                                        r.agents_per_frame, iou, ap_iou, r.score_threshold));
  absl::StrAppend(&out,
                  "forced: boxes positive only through the best-anchor rule; top>thr: boxes with "
                  "a positive anchor scoring above the threshold; ego / others: recall of boxes "
                  "the ego sees / only other agents see.\n");
  return out;
}

}  // namespace qv2x
