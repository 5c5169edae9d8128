// One scenario of a scene: the map, its scenery and the actors' motions, all drawn once
// from the seed. Everything time-dependent is a pure function of t.
#ifndef QV2X_CORE_SIM_WORLD_H_
#define QV2X_CORE_SIM_WORLD_H_

#include <vector>

#include "absl/status/statusor.h"
#include "core/sim/actor.h"
#include "core/sim/lidar.h"
#include "core/sim/scene_config.h"
#include "core/sim/street_layout.h"

namespace qv2x::sim {

struct ActorState {
  int actor = 0;  // index into World::actors()
  Box3D box;      // world frame
};

class World {
 public:
  // Lays out scenario `scenario` (0-based) of `config`.
  static absl::StatusOr<World> Build(const SceneConfig& config, int scenario);

  const StreetLayout& layout() const { return layout_; }
  const std::vector<Solid>& scenery() const { return scenery_; }
  const std::vector<Actor>& actors() const { return actors_; }
  double signal_offset_s() const { return signal_offset_s_; }

  // The actors on the map at time t.
  std::vector<ActorState> ActorsAt(double t) const;
  // Scenery followed by the bodies of `actors`.
  std::vector<Solid> Solids(const std::vector<ActorState>& actors) const;
  // Agent `agent_id`'s sensor at time t; NotFound for an id that is no agent.
  absl::StatusOr<SensorMount> Mount(int agent_id, double t) const;

 private:
  struct Seat {
    int agent_id = 0;
    int actor = -1;     // connected vehicle: its actor
    SensorMount fixed;  // roadside unit
  };

  StreetLayout layout_;
  std::vector<Solid> scenery_;
  std::vector<Actor> actors_;
  std::vector<Seat> seats_;
  double lidar_height_m_ = 0;
  double signal_offset_s_ = 0;
};

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_WORLD_H_
