// What one multi-agent frame holds: each agent's LiDAR sweep and pose, and the ground
// truth objects. Shared by the simulator, the dataset reader, the pillar pipeline and
// evaluation.
#ifndef QV2X_CORE_DATA_FRAME_H_
#define QV2X_CORE_DATA_FRAME_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/geometry/box.h"
#include "core/geometry/transform.h"

namespace qv2x {

// Detection classes, in head order (SPEC §3).
enum class ObjectClass : int { kVehicle = 0, kPedestrian = 1, kTruck = 2 };
constexpr int kNumClasses = 3;
const char* ClassName(ObjectClass c);  // "vehicle", "pedestrian", "truck"
std::optional<ObjectClass> ClassFromName(const std::string& name);
// V2X-Real / OPV2V obj_type mapping (SPEC §9); absent or unknown types -> vehicle.
ObjectClass ClassFromDatasetType(const std::string& obj_type);

// One LiDAR return in the sensor frame.
struct Point {
  float x = 0, y = 0, z = 0, intensity = 0;
};
using PointCloud = std::vector<Point>;

// A ground-truth object in the world frame.
struct GtObject {
  int id = 0;
  ObjectClass cls = ObjectClass::kVehicle;
  Box3D box;  // world frame
  // Agents whose sweep has at least the visibility threshold of points on this object,
  // and how many points each saw (parallel vectors).
  std::vector<int> visible_to;
  std::vector<int> points_by_agent;
};

struct AgentFrame {
  int agent_id = 0;  // negative ids are infrastructure (roadside units)
  bool is_infrastructure = false;
  Pose lidar_pose;    // world frame, OPV2V convention
  PointCloud points;  // sensor frame
};

struct SceneFrame {
  std::string scenario;            // scenario folder name
  int index = 0;                   // frame number within the scenario
  std::string timestamp;           // "000068"-style name used on disk
  int ego_id = 0;                  // agent id of the ego
  std::vector<AgentFrame> agents;  // ego first
  std::vector<GtObject> objects;

  const AgentFrame* Ego() const { return agents.empty() ? nullptr : &agents.front(); }
};

}  // namespace qv2x

#endif  // QV2X_CORE_DATA_FRAME_H_
