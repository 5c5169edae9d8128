#include "core/eval/average_precision.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "core/geometry/box.h"

namespace qv2x {

std::vector<double> DefaultIouThresholds() { return {0.3, 0.5, 0.7}; }

double VocAllPointsAp(const std::vector<double>& recall, const std::vector<double>& precision) {
  const size_t n = std::min(recall.size(), precision.size());
  std::vector<double> mrec(n + 2), mpre(n + 2);
  mrec[0] = 0.0;
  mpre[0] = 0.0;
  for (size_t i = 0; i < n; ++i) {
    mrec[i + 1] = recall[i];
    mpre[i + 1] = precision[i];
  }
  mrec[n + 1] = 1.0;
  mpre[n + 1] = 0.0;
  for (size_t i = n + 1; i-- > 0;) mpre[i] = std::max(mpre[i], mpre[i + 1]);
  double ap = 0.0;
  for (size_t i = 1; i < n + 2; ++i) {
    if (mrec[i] != mrec[i - 1]) ap += (mrec[i] - mrec[i - 1]) * mpre[i];
  }
  return ap;
}

double RankedAp(const std::vector<uint8_t>& is_tp, int64_t num_gt) {
  if (num_gt <= 0 || is_tp.empty()) return 0.0;
  std::vector<double> rec(is_tp.size()), prec(is_tp.size());
  int64_t tp = 0;
  for (size_t i = 0; i < is_tp.size(); ++i) {
    tp += is_tp[i] ? 1 : 0;
    rec[i] = static_cast<double>(tp) / static_cast<double>(num_gt);
    prec[i] = static_cast<double>(tp) / static_cast<double>(i + 1);
  }
  return VocAllPointsAp(rec, prec);
}

ApAccumulator::ApAccumulator(std::vector<double> iou_thresholds, size_t window_frames)
    : thresholds_(std::move(iou_thresholds)), window_frames_(window_frames) {}

void ApAccumulator::AddFrame(const std::vector<EvalBox>& predictions,
                             const std::vector<EvalBox>& ground_truth) {
  const size_t nt = thresholds_.size();
  FrameRecord rec;
  std::vector<size_t> pred_idx, gt_idx;
  std::vector<double> iou;
  std::vector<uint8_t> taken;
  for (int c = 0; c < kNumClasses; ++c) {
    const ObjectClass cls = static_cast<ObjectClass>(c);
    pred_idx.clear();
    gt_idx.clear();
    for (size_t i = 0; i < predictions.size(); ++i) {
      if (predictions[i].cls == cls) pred_idx.push_back(i);
    }
    for (size_t i = 0; i < ground_truth.size(); ++i) {
      if (ground_truth[i].cls == cls) gt_idx.push_back(i);
    }
    ClassRecord& cr = rec[c];
    cr.num_gt = static_cast<int64_t>(gt_idx.size());
    if (pred_idx.empty()) continue;

    // NaN scores would break the ordering; they rank last.
    auto score_of = [&](size_t i) {
      const double s = predictions[i].score;
      return std::isnan(s) ? -std::numeric_limits<double>::infinity() : s;
    };
    std::stable_sort(pred_idx.begin(), pred_idx.end(),
                     [&](size_t a, size_t b) { return score_of(a) > score_of(b); });
    const size_t np = pred_idx.size(), ng = gt_idx.size();
    iou.resize(np * ng);
    for (size_t p = 0; p < np; ++p) {
      for (size_t g = 0; g < ng; ++g) {
        iou[p * ng + g] = BevIou(predictions[pred_idx[p]].box, ground_truth[gt_idx[g]].box);
      }
    }
    cr.scores.resize(np);
    for (size_t p = 0; p < np; ++p) cr.scores[p] = score_of(pred_idx[p]);
    cr.tp.assign(np * nt, 0);
    // Greedy: in score order each detection takes the remaining ground truth of highest
    // IoU (first one on ties); below the threshold it is a false positive and takes none.
    for (size_t t = 0; t < nt; ++t) {
      taken.assign(ng, 0);
      for (size_t p = 0; p < np; ++p) {
        int best = -1;
        double best_iou = -1.0;
        for (size_t g = 0; g < ng; ++g) {
          if (!taken[g] && iou[p * ng + g] > best_iou) {
            best_iou = iou[p * ng + g];
            best = static_cast<int>(g);
          }
        }
        if (best >= 0 && best_iou >= thresholds_[t]) {
          taken[best] = 1;
          cr.tp[p * nt + t] = 1;
        }
      }
    }
  }
  frames_.push_back(std::move(rec));
  if (window_frames_ > 0 && frames_.size() > window_frames_) frames_.pop_front();
}

void ApAccumulator::Pool(int cls, ApSortOrder order,
                         std::vector<std::vector<uint8_t>>* tp_per_threshold, int64_t* num_gt,
                         int64_t* num_pred) const {
  const size_t nt = thresholds_.size();
  size_t total = 0;
  *num_gt = 0;
  for (const FrameRecord& f : frames_) {
    total += f[cls].scores.size();
    *num_gt += f[cls].num_gt;
  }
  *num_pred = static_cast<int64_t>(total);
  // (score, frame, index in frame) in frame order; each frame's list is already sorted.
  std::vector<std::pair<double, std::pair<size_t, size_t>>> ranked;
  ranked.reserve(total);
  for (size_t fi = 0; fi < frames_.size(); ++fi) {
    const ClassRecord& cr = frames_[fi][cls];
    for (size_t p = 0; p < cr.scores.size(); ++p) ranked.push_back({cr.scores[p], {fi, p}});
  }
  if (order == ApSortOrder::kGlobal) {
    // Stable: equal scores keep frame order, so the result does not depend on the sort.
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
  }
  tp_per_threshold->assign(nt, std::vector<uint8_t>(total));
  for (size_t k = 0; k < total; ++k) {
    const auto [fi, p] = ranked[k].second;
    const ClassRecord& cr = frames_[fi][cls];
    for (size_t t = 0; t < nt; ++t) (*tp_per_threshold)[t][k] = cr.tp[p * nt + t];
  }
}

double ApAccumulator::Ap(ObjectClass cls, size_t threshold_index, ApSortOrder order) const {
  if (threshold_index >= thresholds_.size()) return 0.0;
  std::vector<std::vector<uint8_t>> tp;
  int64_t num_gt = 0, num_pred = 0;
  Pool(static_cast<int>(cls), order, &tp, &num_gt, &num_pred);
  return RankedAp(tp[threshold_index], num_gt);
}

EvalResult ApAccumulator::Result(ApSortOrder order) const {
  EvalResult r;
  r.iou_thresholds = thresholds_;
  r.num_frames = num_frames();
  r.map.assign(thresholds_.size(), 0.0);
  std::vector<std::vector<uint8_t>> tp;
  for (int c = 0; c < kNumClasses; ++c) {
    Pool(c, order, &tp, &r.num_gt[c], &r.num_pred[c]);
    r.ap[c].resize(thresholds_.size());
    for (size_t t = 0; t < thresholds_.size(); ++t) {
      r.ap[c][t] = RankedAp(tp[t], r.num_gt[c]);
      r.map[t] += r.ap[c][t] / kNumClasses;
    }
  }
  return r;
}

absl::StatusOr<EvalResult> EvaluateFrames(const std::vector<FrameBoxes>& predictions,
                                          const std::vector<FrameBoxes>& ground_truth,
                                          ApSortOrder order, std::vector<double> iou_thresholds) {
  for (double t : iou_thresholds) {
    if (!(t > 0.0 && t <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat("IoU threshold ", t, " is not in (0, 1]"));
    }
  }
  std::unordered_map<std::string, const FrameBoxes*> gt_by_name, pred_by_name;
  for (const FrameBoxes& f : ground_truth) {
    if (!gt_by_name.emplace(f.frame, &f).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("ground-truth frame \"", f.frame, "\" appears twice"));
    }
  }
  for (const FrameBoxes& f : predictions) {
    if (gt_by_name.count(f.frame) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("prediction frame \"", f.frame, "\" is not in the ground truth"));
    }
    if (!pred_by_name.emplace(f.frame, &f).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("prediction frame \"", f.frame, "\" appears twice"));
    }
  }
  ApAccumulator acc(std::move(iou_thresholds));
  const std::vector<EvalBox> none;
  for (const FrameBoxes& g : ground_truth) {
    auto it = pred_by_name.find(g.frame);
    acc.AddFrame(it == pred_by_name.end() ? none : it->second->boxes, g.boxes);
  }
  return acc.Result(order);
}

}  // namespace qv2x
