#include "core/baselines/early_fusion.h"

#include "core/voxel/pillars.h"

namespace qv2x::baselines {
namespace {

Point Moved(const Mat4& t, const Point& p) {
  const Vec3 q = TransformPoint(t, {p.x, p.y, p.z});
  return {static_cast<float>(q.x), static_cast<float>(q.y), static_cast<float>(q.z), p.intensity};
}

}  // namespace

PointCloud PointsForEgo(const PointCloud& sweep, const Mat4& to_ego, const VoxelConfig& voxel) {
  const auto& r = voxel.lidar_range;
  const auto& body = voxel.ego_body_box;
  PointCloud out;
  for (const Point& p : sweep) {
    if (p.x >= body[0] && p.x <= body[2] && p.y >= body[1] && p.y <= body[3]) continue;
    const Point q = Moved(to_ego, p);
    // The ego's half-open crop (CropPoints) on the point as the ego will see it.
    if (q.x >= r[0] && q.x < r[3] && q.y >= r[1] && q.y < r[4] && q.z >= r[2] && q.z < r[5]) {
      out.push_back(p);
    }
  }
  return out;
}

PointCloud MergeEarlyFusion(const std::vector<AgentPoints>& agents, const VoxelConfig& voxel) {
  size_t total = 0;
  for (const AgentPoints& a : agents) total += a.points.size();
  PointCloud merged;
  merged.reserve(total);
  for (const AgentPoints& a : agents) {
    for (const Point& p : a.points) merged.push_back(Moved(a.to_ego, p));
  }
  return CropPoints(merged, voxel);
}

}  // namespace qv2x::baselines
