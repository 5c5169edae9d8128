#include "core/eval/eval_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace qv2x {
namespace {

std::string ThresholdKey(double t) { return absl::StrFormat("%g", t); }

}  // namespace

std::string EvalResultJson(const EvalResult& r) {
  nlohmann::ordered_json root;
  auto& ap = root["ap"] = nlohmann::ordered_json::object();
  for (int c = 0; c < kNumClasses; ++c) {
    auto& per = ap[ClassName(static_cast<ObjectClass>(c))] = nlohmann::ordered_json::object();
    for (size_t t = 0; t < r.iou_thresholds.size(); ++t) {
      per[ThresholdKey(r.iou_thresholds[t])] = r.ap[c][t];
    }
  }
  auto& map = root["map"] = nlohmann::ordered_json::object();
  for (size_t t = 0; t < r.iou_thresholds.size(); ++t) {
    map[ThresholdKey(r.iou_thresholds[t])] = r.map[t];
  }
  return root.dump();
}

std::string EvalResultTable(const EvalResult& r, ApSortOrder order) {
  std::string out = absl::StrFormat("%-12s", "class");
  for (double t : r.iou_thresholds)
    absl::StrAppend(&out, absl::StrFormat("  %8s", "AP@" + ThresholdKey(t)));
  absl::StrAppend(&out, absl::StrFormat("  %8s  %8s\n", "gt", "pred"));
  for (int c = 0; c < kNumClasses; ++c) {
    absl::StrAppend(&out, absl::StrFormat("%-12s", ClassName(static_cast<ObjectClass>(c))));
    for (double ap : r.ap[c]) absl::StrAppend(&out, absl::StrFormat("  %8.4f", ap));
    absl::StrAppend(&out, absl::StrFormat("  %8d  %8d\n", r.num_gt[c], r.num_pred[c]));
  }
  absl::StrAppend(&out, absl::StrFormat("%-12s", "mAP"));
  for (double m : r.map) absl::StrAppend(&out, absl::StrFormat("  %8.4f", m));
  absl::StrAppend(&out, "\n");
  absl::StrAppend(
      &out, absl::StrFormat("frames: %d, sort: %s (rotated BEV IoU, VOC all-points AP; a class "
                            "without ground truth has AP 0 and counts in the mAP)\n",
                            r.num_frames, order == ApSortOrder::kGlobal ? "global" : "per-frame"));
  return out;
}

}  // namespace qv2x
