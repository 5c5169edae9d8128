// The scene simulator (SPEC §9): deterministic from the scene's seed, random access by
// (scenario, frame). Each agent's sweep depends only on the world at that instant and on a
// noise stream keyed by (seed, scenario, frame, agent), so an agent service can simulate
// its own sweep alone and get exactly the points Frame() would give it.
#ifndef QV2X_CORE_SIM_SIMULATOR_H_
#define QV2X_CORE_SIM_SIMULATOR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/frame.h"
#include "core/sim/lidar.h"
#include "core/sim/scene_config.h"
#include "core/sim/world.h"

namespace qv2x::sim {

class Simulator {
 public:
  // Lays out every scenario; fails when the scene cannot be placed (e.g. too much traffic).
  static absl::StatusOr<Simulator> Create(const SceneConfig& config);

  const SceneConfig& config() const { return config_; }
  int num_scenarios() const { return static_cast<int>(worlds_.size()); }
  const World& world(int scenario) const { return worlds_[scenario]; }
  // Folder name of a scenario: "<name>_<scenario, 3 digits>".
  std::string ScenarioName(int scenario) const;
  // Agent ids, the ego first, then the others in scene-file order.
  const std::vector<int>& agent_ids() const { return agent_ids_; }
  double TimeAt(int index) const { return index / config_.rate_hz; }

  // Everything at frame `index` of `scenario`: every agent's sweep (ego first) and the
  // ground truth with per-agent visibility.
  absl::StatusOr<SceneFrame> Frame(int scenario, int index) const;
  // One agent's sweep and pose, identical to its entry in Frame().
  absl::StatusOr<AgentFrame> SimulateAgent(int scenario, int index, int agent_id) const;
  // Ground truth (vehicles, pedestrians, trucks; world frame) with visibility. Visibility
  // needs every agent's sweep, so this costs as much as Frame().
  absl::StatusOr<std::vector<GtObject>> GroundTruth(int scenario, int index) const;
  // An agent's LiDAR pose (OPV2V convention, degrees).
  absl::StatusOr<Pose> AgentPose(int scenario, int index, int agent_id) const;

 private:
  Simulator(SceneConfig config, std::vector<World> worlds);
  absl::Status Check(int scenario, int index) const;
  // Sweep of one agent at the given world state.
  absl::StatusOr<AgentFrame> Sense(int scenario, int index, int agent_id,
                                   const std::vector<Solid>& solids, int num_actors,
                                   std::vector<int>* points_per_actor) const;

  SceneConfig config_;
  Lidar lidar_;
  std::vector<World> worlds_;
  std::vector<int> agent_ids_;
};

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_SIMULATOR_H_
