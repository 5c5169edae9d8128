// One simulated frame as JSON in the ego frame, for plotting outside qv2x (the demo draws
// it with gnuplot): every agent's pose and points, and the ground-truth boxes with who
// sees them. Units: metres and radians; x forward, y left, as the detector's boxes.
#ifndef QV2X_TOOLS_QV2X_FRAME_EXPORT_H_
#define QV2X_TOOLS_QV2X_FRAME_EXPORT_H_

#include "core/data/frame.h"
#include "nlohmann/json.hpp"

namespace qv2x::cli {

// {"scenario", "frame", "ego_id", "roi_half": [x, y],
//  "agents": [{"id", "infrastructure", "x", "y", "yaw", "points": [[x, y, h], ...]}],
//  "gt": [{"id", "class", "x", "y", "z", "l", "w", "h", "yaw", "seen_by_ego",
//          "seen_by": [ids]}]}
// where h is a point's height above its own sweep's ground level (a low quantile), so
// that plots can tell ground from objects. Every `point_stride`-th point is kept.
nlohmann::json FrameJson(const SceneFrame& frame, double roi_half_x, double roi_half_y,
                         int point_stride);

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_FRAME_EXPORT_H_
