#include "core/detection/nms.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qv2x {

std::vector<int> RotatedBevNms(const std::vector<Box3D>& boxes, const std::vector<float>& scores,
                               double iou_threshold) {
  const int n = static_cast<int>(std::min(boxes.size(), scores.size()));
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  // Circumradii: boxes whose circles do not touch cannot overlap, which skips most pairs
  // without the polygon clipping.
  std::vector<double> radius(n);
  for (int i = 0; i < n; ++i) radius[i] = std::hypot(boxes[i].l, boxes[i].w) / 2;

  std::vector<int> kept;
  for (int i : order) {
    const Box3D& b = boxes[i];
    bool suppressed = false;
    for (int k : kept) {
      const Box3D& o = boxes[k];
      const double dx = b.x - o.x, dy = b.y - o.y, r = radius[i] + radius[k];
      if (dx * dx + dy * dy > r * r) continue;
      if (BevIou(b, o) > iou_threshold) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) kept.push_back(i);
  }
  return kept;
}

}  // namespace qv2x
