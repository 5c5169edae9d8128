#include "tools/qv2x/frame_export.h"

#include <algorithm>
#include <vector>

#include "core/geometry/box.h"
#include "core/geometry/transform.h"
#include "core/render/bev_png.h"

namespace qv2x::cli {

nlohmann::json FrameJson(const SceneFrame& frame, double roi_half_x, double roi_half_y,
                         int point_stride) {
  nlohmann::json j;
  j["scenario"] = frame.scenario;
  j["frame"] = frame.index;
  j["ego_id"] = frame.ego_id;
  j["roi_half"] = {roi_half_x, roi_half_y};
  j["agents"] = nlohmann::json::array();
  j["gt"] = nlohmann::json::array();
  if (frame.agents.empty()) return j;
  const Pose& ego = frame.agents.front().lidar_pose;
  const Mat4 world_to_ego = RigidInverse(PoseToMatrix(ego));
  const size_t stride = static_cast<size_t>(std::max(1, point_stride));
  for (const AgentFrame& a : frame.agents) {
    const Mat4 t = RelativeTransform(a.lidar_pose, ego);
    // Heights above the sweep's own ground, as the BEV picture tells ground from objects.
    const float ground = GroundLevel(a.points);
    nlohmann::json points = nlohmann::json::array();
    for (size_t i = 0; i < a.points.size(); i += stride) {
      const Point& p = a.points[i];
      const Vec3 q = TransformPoint(t, {p.x, p.y, p.z});
      points.push_back({q.x, q.y, p.z - ground});
    }
    const Vec3 at = TransformPoint(world_to_ego, {a.lidar_pose.x, a.lidar_pose.y, a.lidar_pose.z});
    j["agents"].push_back({{"id", a.agent_id},
                           {"infrastructure", a.is_infrastructure},
                           {"x", at.x},
                           {"y", at.y},
                           {"yaw", DegToRad(a.lidar_pose.yaw - ego.yaw)},
                           {"points", std::move(points)}});
  }
  for (const GtObject& o : frame.objects) {
    if (o.id == frame.ego_id) continue;
    const Box3D b = TransformBox(world_to_ego, o.box);
    const bool by_ego =
        std::find(o.visible_to.begin(), o.visible_to.end(), frame.ego_id) != o.visible_to.end();
    j["gt"].push_back({{"id", o.id},
                       {"class", ClassName(o.cls)},
                       {"x", b.x},
                       {"y", b.y},
                       {"z", b.z},
                       {"l", b.l},
                       {"w", b.w},
                       {"h", b.h},
                       {"yaw", b.yaw},
                       {"seen_by_ego", by_ego},
                       {"seen_by", o.visible_to}});
  }
  return j;
}

}  // namespace qv2x::cli
