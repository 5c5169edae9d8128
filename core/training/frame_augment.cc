#include "core/training/frame_augment.h"

#include <algorithm>
#include <cmath>

#include "core/geometry/transform.h"
#include "core/sim/rng.h"

namespace qv2x {
namespace {

Mat4 RotZ(double rad) {
  Mat4 r = Mat4::Identity();
  r(0, 0) = std::cos(rad);
  r(0, 1) = -std::sin(rad);
  r(1, 0) = std::sin(rad);
  r(1, 1) = std::cos(rad);
  return r;
}

void Mirror(SceneFrame* f) {
  for (AgentFrame& a : f->agents) {
    for (Point& p : a.points) p.y = -p.y;
    a.lidar_pose.y = -a.lidar_pose.y;
    a.lidar_pose.yaw = -a.lidar_pose.yaw;
    a.lidar_pose.roll = -a.lidar_pose.roll;
  }
  for (GtObject& o : f->objects) {
    o.box.y = -o.box.y;
    o.box.yaw = WrapAngle(-o.box.yaw);
  }
}

void TurnEgo(double rad, SceneFrame* f) {
  if (f->agents.empty()) return;
  AgentFrame& ego = f->agents.front();
  const float c = static_cast<float>(std::cos(rad)), s = static_cast<float>(std::sin(rad));
  for (Point& p : ego.points) {
    const float x = p.x, y = p.y;
    p.x = c * x - s * y;
    p.y = s * x + c * y;
  }
  ego.lidar_pose = MatrixToPose(PoseToMatrix(ego.lidar_pose) * RotZ(-rad));
}

}  // namespace

Augmentation DrawAugmentation(const AugmentConfig& config, const SceneFrame& frame, uint64_t key) {
  sim::Rng rng(key);
  Augmentation a;
  // Every draw is taken whether used or not, so one setting does not shift the others.
  a.mirror = rng.Uniform() < config.flip_probability;
  a.turn_rad = DegToRad(rng.Uniform(-config.rotate_deg, config.rotate_deg));
  for (size_t i = 0; i < frame.agents.size(); ++i) {
    const bool drop = rng.Uniform() < config.agent_dropout;
    if (drop && frame.agents[i].agent_id != frame.ego_id) {
      a.dropped_agents.push_back(frame.agents[i].agent_id);
    }
  }
  for (size_t i = 0; i < frame.agents.size(); ++i) {
    const bool sparse = rng.Uniform() < config.sparse_probability;
    CellSelection sel;
    sel.min_height_span_m = rng.Uniform(config.sparse_span_m[0], config.sparse_span_m[1]);
    const double d =
        rng.Uniform(config.sparse_dilation_cells[0], config.sparse_dilation_cells[1] + 1);
    sel.dilation_cells = std::min(config.sparse_dilation_cells[1], static_cast<int>(d));
    if (sparse && frame.agents[i].agent_id != frame.ego_id) {
      a.sparse_agents.emplace_back(frame.agents[i].agent_id, sel);
    }
  }
  return a;
}

void MarkSparseAgents(const Augmentation& a, CollatedFrame* frame) {
  for (AgentInput& in : frame->agents) {
    for (const auto& [id, sel] : a.sparse_agents) {
      if (in.agent_id == id) in.sparse = sel;
    }
  }
}

void ApplyAugmentation(const Augmentation& a, SceneFrame* frame) {
  auto dropped = [&](const AgentFrame& f) {
    return f.agent_id != frame->ego_id &&
           std::find(a.dropped_agents.begin(), a.dropped_agents.end(), f.agent_id) !=
               a.dropped_agents.end();
  };
  frame->agents.erase(std::remove_if(frame->agents.begin(), frame->agents.end(), dropped),
                      frame->agents.end());
  if (a.mirror) Mirror(frame);
  if (a.turn_rad != 0) TurnEgo(a.turn_rad, frame);
}

}  // namespace qv2x
