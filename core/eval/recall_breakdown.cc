#include "core/eval/recall_breakdown.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"
#include "core/geometry/box.h"

namespace qv2x {
namespace {

// Whether `inner`'s BEV centre lies inside `outer`'s rotated footprint.
bool CentreInside(const Box3D& inner, const Box3D& outer) {
  const double dx = inner.x - outer.x, dy = inner.y - outer.y;
  const double c = std::cos(outer.yaw), s = std::sin(outer.yaw);
  return std::abs(c * dx + s * dy) <= outer.l / 2 && std::abs(-s * dx + c * dy) <= outer.w / 2;
}

}  // namespace

absl::StatusOr<RecallBreakdown> RecallBreakdown::Create(double iou_threshold,
                                                        std::vector<double> distance_edges_m) {
  if (!(iou_threshold > 0 && iou_threshold <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("IoU threshold must be in (0, 1], got %g", iou_threshold));
  }
  if (distance_edges_m.empty() || distance_edges_m.front() != 0) {
    return absl::InvalidArgumentError("distance bins must start at 0 m");
  }
  for (size_t i = 1; i < distance_edges_m.size(); ++i) {
    if (!(distance_edges_m[i] > distance_edges_m[i - 1])) {
      return absl::InvalidArgumentError(
          absl::StrFormat("distance bins must increase: %g follows %g", distance_edges_m[i],
                          distance_edges_m[i - 1]));
    }
  }
  return RecallBreakdown(iou_threshold, std::move(distance_edges_m));
}

RecallBreakdown::RecallBreakdown(double iou_threshold, std::vector<double> edges)
    : iou_threshold_(iou_threshold), edges_(std::move(edges)) {
  for (ClassBreakdown& c : classes_) c.by_distance.resize(edges_.size());
}

int RecallBreakdown::DistanceBin(double x, double y) const {
  const double d = std::hypot(x, y);
  const auto it = std::upper_bound(edges_.begin(), edges_.end(), d);
  return static_cast<int>(std::max<std::ptrdiff_t>(0, (it - edges_.begin()) - 1));
}

void RecallBreakdown::AddFrame(const std::vector<EvalBox>& predictions,
                               const std::vector<BreakdownGt>& gt) {
  std::vector<uint8_t> found(gt.size(), 0);
  for (int c = 0; c < kNumClasses; ++c) {
    const ObjectClass cls = static_cast<ObjectClass>(c);
    std::vector<size_t> pred, truth;
    for (size_t i = 0; i < predictions.size(); ++i) {
      if (predictions[i].cls == cls) pred.push_back(i);
    }
    for (size_t i = 0; i < gt.size(); ++i) {
      if (gt[i].box.cls == cls) truth.push_back(i);
    }
    auto score_of = [&](size_t i) {
      const double s = predictions[i].score;
      return std::isnan(s) ? -std::numeric_limits<double>::infinity() : s;
    };
    std::stable_sort(pred.begin(), pred.end(),
                     [&](size_t a, size_t b) { return score_of(a) > score_of(b); });
    ClassBreakdown& out = classes_[c];
    for (size_t p : pred) {
      int best = -1;
      double best_iou = -1;
      for (size_t g : truth) {
        if (found[g]) continue;
        const double iou = BevIou(predictions[p].box, gt[g].box.box);
        if (iou > best_iou) {
          best_iou = iou;
          best = static_cast<int>(g);
        }
      }
      const bool tp = best >= 0 && best_iou >= iou_threshold_;
      if (tp) found[best] = 1;
      (tp ? out.tp_scores : out.fp_scores).Add(predictions[p].score);
    }
  }
  for (size_t g = 0; g < gt.size(); ++g) {
    const BreakdownGt& b = gt[g];
    ClassBreakdown& out = classes_[static_cast<int>(b.box.cls)];
    for (RecallCount* r : {&out.all, &out.by_distance[DistanceBin(b.box.box.x, b.box.box.y)],
                           b.seen_by_ego ? &out.seen_by_ego : &out.only_others}) {
      ++r->gt;
      r->found += found[g];
    }
    if (found[g]) continue;
    // A miss: did a detection of another class sit on it? (Its centre inside the box: a
    // car-sized box on a truck overlaps it by IoU 0.4 at most.)
    std::array<bool, kNumClasses> as{};
    for (const EvalBox& p : predictions) {
      if (p.cls != b.box.cls && CentreInside(p.box, b.box.box)) as[static_cast<int>(p.cls)] = true;
    }
    for (int k = 0; k < kNumClasses; ++k) out.missed_as[k] += as[k];
  }
}

}  // namespace qv2x
