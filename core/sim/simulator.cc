#include "core/sim/simulator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "core/sim/rng.h"

namespace qv2x::sim {
namespace {

constexpr int64_t kLidarNoiseStream = 3;

// Roadside units report their sweeps in a virtual LiDAR frame at the vehicles' LiDAR height
// above the street (as DAIR-V2X does), not at the top of their mast: the model crops
// heights relative to the sensor (cav_lidar_range z [-3, 1] m), which on a 6 m mast would
// keep only what stands 3-7 m above the street and no car. The scan itself is still taken
// from the mast, so what it sees over the traffic is unchanged; only z shifts.
double VirtualZOffset(const SensorMount& m, const LidarConfig& lidar) {
  return m.agent_id < 0 && m.agent_id != kNoAgent ? m.z - lidar.mount_height_m : 0.0;
}

Pose MountPose(const SensorMount& m, const LidarConfig& lidar) {
  Pose p;
  p.x = m.x;
  p.y = m.y;
  p.z = m.z - VirtualZOffset(m, lidar);
  p.yaw = RadToDeg(WrapAngle(m.yaw_rad));
  return p;
}

}  // namespace

Simulator::Simulator(SceneConfig config, std::vector<World> worlds)
    : config_(std::move(config)), lidar_(config_.lidar), worlds_(std::move(worlds)) {
  agent_ids_.push_back(config_.ego_id);
  for (const AgentConfig& a : config_.agents) {
    if (a.id != config_.ego_id) agent_ids_.push_back(a.id);
  }
}

absl::StatusOr<Simulator> Simulator::Create(const SceneConfig& config) {
  if (config.FindAgent(config.ego_id) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("ego_id: no agent has id ", config.ego_id));
  }
  std::vector<World> worlds;
  worlds.reserve(config.scenarios);
  for (int k = 0; k < config.scenarios; ++k) {
    absl::StatusOr<World> w = World::Build(config, k);
    if (!w.ok()) {
      return absl::Status(w.status().code(),
                          absl::StrCat("scenario ", k, ": ", w.status().message()));
    }
    worlds.push_back(*std::move(w));
  }
  return Simulator(config, std::move(worlds));
}

std::string Simulator::ScenarioName(int scenario) const {
  return absl::StrFormat("%s_%03d", config_.name, scenario);
}

absl::Status Simulator::Check(int scenario, int index) const {
  if (scenario < 0 || scenario >= num_scenarios()) {
    return absl::OutOfRangeError(
        absl::StrCat("scenario ", scenario, " is outside [0, ", num_scenarios(), ")"));
  }
  if (index < 0) return absl::OutOfRangeError(absl::StrCat("frame ", index, " is negative"));
  return absl::OkStatus();
}

absl::StatusOr<AgentFrame> Simulator::Sense(int scenario, int index, int agent_id,
                                            const std::vector<Solid>& solids, int num_actors,
                                            std::vector<int>* points_per_actor) const {
  const World& w = worlds_[scenario];
  QV2X_ASSIGN_OR_RETURN(SensorMount mount, w.Mount(agent_id, TimeAt(index)));
  Rng noise(StreamKey(config_.seed, {kLidarNoiseStream, scenario, index, agent_id}));
  Sweep sweep = lidar_.Scan(solids, num_actors, w.layout(), mount, &noise);
  AgentFrame f;
  f.agent_id = agent_id;
  f.is_infrastructure = agent_id < 0;
  f.lidar_pose = MountPose(mount, config_.lidar);
  f.points = std::move(sweep.points);
  if (const float dz = static_cast<float>(VirtualZOffset(mount, config_.lidar)); dz != 0) {
    for (Point& p : f.points) p.z += dz;
  }
  if (points_per_actor != nullptr) *points_per_actor = std::move(sweep.points_per_owner);
  return f;
}

absl::StatusOr<SceneFrame> Simulator::Frame(int scenario, int index) const {
  QV2X_RETURN_IF_ERROR(Check(scenario, index));
  const World& w = worlds_[scenario];
  const std::vector<ActorState> actors = w.ActorsAt(TimeAt(index));
  const std::vector<Solid> solids = w.Solids(actors);
  const int num_actors = static_cast<int>(w.actors().size());

  SceneFrame frame;
  frame.scenario = ScenarioName(scenario);
  frame.index = index;
  frame.timestamp = absl::StrFormat("%06d", index);
  frame.ego_id = config_.ego_id;
  std::vector<std::vector<int>> seen(agent_ids_.size());
  for (size_t i = 0; i < agent_ids_.size(); ++i) {
    QV2X_ASSIGN_OR_RETURN(AgentFrame af,
                          Sense(scenario, index, agent_ids_[i], solids, num_actors, &seen[i]));
    frame.agents.push_back(std::move(af));
  }
  for (const ActorState& s : actors) {
    const Actor& a = w.actors()[s.actor];
    GtObject o;
    o.id = a.id;
    o.cls = a.cls;
    o.box = s.box;
    for (size_t i = 0; i < agent_ids_.size(); ++i) {
      const int n = seen[i][s.actor];
      if (n >= config_.visibility_min_points) {
        o.visible_to.push_back(agent_ids_[i]);
        o.points_by_agent.push_back(n);
      }
    }
    frame.objects.push_back(std::move(o));
  }
  std::sort(frame.objects.begin(), frame.objects.end(),
            [](const GtObject& x, const GtObject& y) { return x.id < y.id; });
  return frame;
}

absl::StatusOr<AgentFrame> Simulator::SimulateAgent(int scenario, int index, int agent_id) const {
  QV2X_RETURN_IF_ERROR(Check(scenario, index));
  const World& w = worlds_[scenario];
  const std::vector<Solid> solids = w.Solids(w.ActorsAt(TimeAt(index)));
  return Sense(scenario, index, agent_id, solids, static_cast<int>(w.actors().size()), nullptr);
}

absl::StatusOr<std::vector<GtObject>> Simulator::GroundTruth(int scenario, int index) const {
  QV2X_ASSIGN_OR_RETURN(SceneFrame f, Frame(scenario, index));
  return std::move(f.objects);
}

absl::StatusOr<Pose> Simulator::AgentPose(int scenario, int index, int agent_id) const {
  QV2X_RETURN_IF_ERROR(Check(scenario, index));
  QV2X_ASSIGN_OR_RETURN(SensorMount m, worlds_[scenario].Mount(agent_id, TimeAt(index)));
  return MountPose(m, config_.lidar);
}

}  // namespace qv2x::sim
