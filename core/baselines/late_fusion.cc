#include "core/baselines/late_fusion.h"

#include <algorithm>

#include "core/detection/nms.h"

namespace qv2x::baselines {

std::vector<Detection> MergeLateFusion(const std::vector<AgentDetections>& agents,
                                       const LateFusionOptions& options) {
  const auto& body = options.ego_body;
  std::array<std::vector<Detection>, kNumClasses> by_class;
  for (const AgentDetections& a : agents) {
    for (Detection d : a.detections) {
      d.box = TransformBox(a.to_ego, d.box);
      const double x = d.box.x, y = d.box.y;
      if (x >= body[0] && x <= body[2] && y >= body[1] && y <= body[3]) continue;
      by_class[static_cast<int>(d.cls)].push_back(d);
    }
  }
  std::vector<Detection> out;
  for (const std::vector<Detection>& pool : by_class) {
    std::vector<Box3D> boxes;
    std::vector<float> scores;
    for (const Detection& d : pool) {
      boxes.push_back(d.box);
      scores.push_back(static_cast<float>(d.score));
    }
    for (int k : RotatedBevNms(boxes, scores, options.nms_thresh)) {
      if (BevInsideRange(pool[k].box, options.range)) out.push_back(pool[k]);
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  return out;
}

}  // namespace qv2x::baselines
