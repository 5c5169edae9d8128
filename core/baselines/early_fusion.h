// Early fusion (the OpenCOOD baseline): agents send their raw points; the ego moves them
// into its frame, appends them to its own sweep and detects on the merged cloud with the
// usual range crop and pillar caps (nothing is de-duplicated).
#ifndef QV2X_CORE_BASELINES_EARLY_FUSION_H_
#define QV2X_CORE_BASELINES_EARLY_FUSION_H_

#include <vector>

#include "core/config/model_config.h"
#include "core/data/frame.h"
#include "core/geometry/transform.h"

namespace qv2x::baselines {

// What an agent sends: the points of its sweep (kept in its own frame) that are off its own
// body (voxel.ego_body_box) and land inside the ego's lidar range once moved by
// `to_ego`. An agent knows the ego's pose from the V2X broadcast, so it sends nothing the
// ego would crop away.
PointCloud PointsForEgo(const PointCloud& sweep, const Mat4& to_ego, const VoxelConfig& voxel);

struct AgentPoints {
  Mat4 to_ego;        // identity for the ego
  PointCloud points;  // the sender's frame
};

// The ego's input: every agent's points moved into the ego frame in the given order (the
// ego first, so its own points win the first-come pillar slots), then CropPoints (range,
// the ego's body, intensity). Pillarize it with the usual caps.
PointCloud MergeEarlyFusion(const std::vector<AgentPoints>& agents, const VoxelConfig& voxel);

}  // namespace qv2x::baselines

#endif  // QV2X_CORE_BASELINES_EARLY_FUSION_H_
