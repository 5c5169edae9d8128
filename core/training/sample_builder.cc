#include "core/training/sample_builder.h"

#include <algorithm>

#include "core/common/status_macros.h"
#include "core/detection/postprocess.h"

namespace qv2x {

namespace {

// Objects at least one of `agent_ids` saw; objects without visibility data all count.
std::vector<GtObject> SeenBy(const SceneFrame& frame, const std::vector<int>& agent_ids) {
  std::vector<GtObject> kept;
  for (const GtObject& o : frame.objects) {
    bool seen = o.points_by_agent.empty();
    for (int id : o.visible_to) {
      seen |= std::find(agent_ids.begin(), agent_ids.end(), id) != agent_ids.end();
    }
    if (seen) kept.push_back(o);
  }
  return kept;
}

}  // namespace

std::vector<GtObject> EgoGroundTruthObjects(const SceneFrame& frame,
                                            const std::vector<int>& agent_ids,
                                            const StageConfig& cfg) {
  std::vector<GtObject> out;
  const AgentFrame* ego = frame.Ego();
  if (ego == nullptr) return out;
  const Mat4 world_to_ego = RigidInverse(PoseToMatrix(ego->lidar_pose));
  for (GtObject& o : SeenBy(frame, agent_ids)) {
    // The ego's own car (object id = agent id in simulated and OPV2V frames) is not a
    // detection target: its own LiDAR cannot see it and the ego knows where it is.
    if (o.id == frame.ego_id) continue;
    o.box = TransformBox(world_to_ego, o.box);
    if (BevInsideRange(o.box, cfg.postprocess.gt_range)) out.push_back(std::move(o));
  }
  return out;
}

std::vector<LabeledBox> EgoGroundTruth(const SceneFrame& frame, const std::vector<int>& agent_ids,
                                       const StageConfig& cfg) {
  std::vector<LabeledBox> out;
  for (const GtObject& o : EgoGroundTruthObjects(frame, agent_ids, cfg)) {
    out.push_back({o.cls, o.box});
  }
  return out;
}

absl::StatusOr<Sample> BuildSample(const SceneFrame& frame, const StageConfig& cfg,
                                   const AnchorGrid& grid, const SampleOptions& options) {
  Sample s;
  QV2X_ASSIGN_OR_RETURN(s.collated, CollateFrame(frame, cfg.preprocess, cfg.comm_range,
                                                 cfg.train_params.max_cav, options.mode));
  std::vector<int> ids;
  for (const AgentInput& a : s.collated.agents) ids.push_back(a.agent_id);
  s.gt = EgoGroundTruth(frame, ids, cfg);
  if (options.targets) {
    QV2X_ASSIGN_OR_RETURN(s.targets, AssignTargets(grid, s.gt, cfg.model.dir_args));
  }
  if (options.occupancy) {
    // Each agent's labels come from the same visible objects, seen from its own pose.
    const std::vector<GtObject> visible = SeenBy(frame, ids);
    const std::vector<int> strides = OccupancyLevelStrides(cfg);
    for (const AgentInput& a : s.collated.agents) {
      std::vector<LabeledBox> boxes;
      for (LabeledBox& b : BoxesInAgentFrame(visible, a.lidar_pose)) {
        if (BevInsideRange(b.box, cfg.preprocess.lidar_range)) boxes.push_back(b);
      }
      QV2X_ASSIGN_OR_RETURN(auto levels, AgentOccupancyLabels(grid, boxes, strides));
      s.occupancy.push_back(std::move(levels));
    }
  }
  return s;
}

}  // namespace qv2x
