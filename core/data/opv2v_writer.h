// Writes frames in the OPV2V folder layout (SPEC §9), readable by OpenCOOD-style loaders and
// by Opv2vDataset: ROOT/<scenario>/<agent_id>/<timestamp>.pcd (float32 x y z intensity,
// sensor frame; binary unless asked otherwise) and .yaml with
//   ego: true|false
//   timestamp: '000042'
//   lidar_pose: [x, y, z, roll, yaw, pitch]      (world frame, degrees)
//   true_ego_pos: (same as lidar_pose)
//   vehicles:
//     <id>: {location: [x, y, z], center: [0, 0, 0], angle: [roll, yaw, pitch],
//            extent: [l/2, w/2, h/2], obj_type: Car|Truck|Pedestrian,
//            visible_to: [agent ids], points_by_agent: [counts]}
// Each agent's `vehicles` lists every ground-truth object but the agent's own body (the
// OPV2V convention); `location` is the box centre in the world frame.
#ifndef QV2X_CORE_DATA_OPV2V_WRITER_H_
#define QV2X_CORE_DATA_OPV2V_WRITER_H_

#include <string>

#include "absl/status/status.h"
#include "core/data/frame.h"
#include "core/data/point_cloud_io.h"

namespace qv2x {

// obj_type written for a class: "Car", "Pedestrian" or "Truck".
const char* DatasetTypeName(ObjectClass c);

// The YAML text of one agent's entry in a frame.
std::string Opv2vAgentYaml(const SceneFrame& frame, const AgentFrame& agent);

// `pcd`: the sweeps' DATA layout.
absl::Status WriteOpv2vFrame(const SceneFrame& frame, const std::string& root,
                             PcdData pcd = PcdData::kBinary);

}  // namespace qv2x

#endif  // QV2X_CORE_DATA_OPV2V_WRITER_H_
