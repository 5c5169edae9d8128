// Late fusion (the OpenCOOD baseline): every agent detects on its own sweep and sends its
// boxes; the ego moves them into its frame, pools them with its own and suppresses
// duplicates with rotated BEV NMS per class.
#ifndef QV2X_CORE_BASELINES_LATE_FUSION_H_
#define QV2X_CORE_BASELINES_LATE_FUSION_H_

#include <array>
#include <vector>

#include "core/detection/postprocess.h"
#include "core/geometry/transform.h"

namespace qv2x::baselines {

struct AgentDetections {
  Mat4 to_ego;                        // the sender's frame → the ego's (identity for the ego)
  std::vector<Detection> detections;  // the sender's frame
};

struct LateFusionOptions {
  double nms_thresh = 0.15;          // postprocess.nms_thresh
  std::array<double, 6> range{};     // postprocess.gt_range (the evaluation range)
  std::array<double, 4> ego_body{};  // preprocess.ego_body_box: x0 y0 x1 y1, ego frame
};

// Pools every agent's detections in the ego frame, drops those centred on the ego's own
// body (other agents see the ego's car; the ego knows where it is, and its car is no
// detection target), keeps per class the boxes that rotated BEV NMS at nms_thresh keeps
// (highest score first), then only those whose BEV corners lie inside the range. Sorted
// by score, highest first; ties keep the pooling order (ego first).
std::vector<Detection> MergeLateFusion(const std::vector<AgentDetections>& agents,
                                       const LateFusionOptions& options);

}  // namespace qv2x::baselines

#endif  // QV2X_CORE_BASELINES_LATE_FUSION_H_
