// Rotated BEV non-maximum suppression (SPEC §3 "Post-processing"), plain C++.
#ifndef QV2X_CORE_DETECTION_NMS_H_
#define QV2X_CORE_DETECTION_NMS_H_

#include <vector>

#include "core/geometry/box.h"

namespace qv2x {

// Greedy, class-agnostic: visits boxes by descending score (ties: lower index first), keeps
// a box unless its qv2x::BevIou with an already kept box exceeds `iou_threshold`. Returns
// the kept indices in visiting order. `scores` must have one entry per box.
std::vector<int> RotatedBevNms(const std::vector<Box3D>& boxes, const std::vector<float>& scores,
                               double iou_threshold);

}  // namespace qv2x

#endif  // QV2X_CORE_DETECTION_NMS_H_
