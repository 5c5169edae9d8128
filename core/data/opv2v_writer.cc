#include "core/data/opv2v_writer.h"

#include <charconv>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/data/point_cloud_io.h"

namespace qv2x {
namespace {

// Shortest text that reads back to the same double.
std::string Num(double v) {
  if (v == 0) return "0";  // also folds -0
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

std::string List(std::initializer_list<double> values) {
  std::string s = "[";
  for (double v : values) absl::StrAppend(&s, s.size() > 1 ? ", " : "", Num(v));
  return s + "]";
}

std::string IntList(const std::vector<int>& values) {
  std::string s = "[";
  for (int v : values) absl::StrAppend(&s, s.size() > 1 ? ", " : "", v);
  return s + "]";
}

}  // namespace

const char* DatasetTypeName(ObjectClass c) {
  switch (c) {
    case ObjectClass::kVehicle:
      return "Car";
    case ObjectClass::kPedestrian:
      return "Pedestrian";
    case ObjectClass::kTruck:
      return "Truck";
  }
  return "Car";
}

std::string Opv2vAgentYaml(const SceneFrame& frame, const AgentFrame& agent) {
  const Pose& p = agent.lidar_pose;
  const std::string pose = List({p.x, p.y, p.z, p.roll, p.yaw, p.pitch});
  std::string y = absl::StrCat("ego: ", agent.agent_id == frame.ego_id ? "true" : "false",
                               "\ntimestamp: '", frame.timestamp, "'\nlidar_pose: ", pose,
                               "\ntrue_ego_pos: ", pose, "\nvehicles:");
  bool any = false;
  for (const GtObject& o : frame.objects) {
    if (o.id == agent.agent_id) continue;  // its own body (RSU ids are negative, objects not)
    const Box3D& b = o.box;
    absl::StrAppend(&y, "\n  ", o.id, ":\n    location: ", List({b.x, b.y, b.z}),
                    "\n    center: [0, 0, 0]\n    angle: ", List({0, RadToDeg(b.yaw), 0}),
                    "\n    extent: ", List({b.l / 2, b.w / 2, b.h / 2}),
                    "\n    obj_type: ", DatasetTypeName(o.cls),
                    "\n    visible_to: ", IntList(o.visible_to),
                    "\n    points_by_agent: ", IntList(o.points_by_agent));
    any = true;
  }
  if (!any) absl::StrAppend(&y, " {}");
  return y + "\n";
}

absl::Status WriteOpv2vFrame(const SceneFrame& frame, const std::string& root, PcdData pcd) {
  if (frame.scenario.empty() || frame.timestamp.empty()) {
    return absl::InvalidArgumentError("frame needs a scenario name and a timestamp");
  }
  for (const AgentFrame& a : frame.agents) {
    const std::string stem = (std::filesystem::path(root) / frame.scenario /
                              std::to_string(a.agent_id) / frame.timestamp)
                                 .string();
    QV2X_RETURN_IF_ERROR(WritePcd(stem + ".pcd", a.points, pcd));
    QV2X_RETURN_IF_ERROR(WriteFileAtomic(stem + ".yaml", Opv2vAgentYaml(frame, a)));
  }
  return absl::OkStatus();
}

}  // namespace qv2x
