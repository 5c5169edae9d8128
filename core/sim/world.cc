#include "core/sim/world.h"

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/sim/rng.h"
#include "core/sim/scenery.h"
#include "core/sim/traffic.h"

namespace qv2x::sim {
namespace {

// Random streams of a scenario; the LiDAR noise stream lives in simulator.cc.
constexpr int64_t kSceneryStream = 1;
constexpr int64_t kTrafficStream = 2;

}  // namespace

absl::StatusOr<World> World::Build(const SceneConfig& config, int scenario) {
  World w;
  w.layout_ = StreetLayout(config.map);
  w.lidar_height_m_ = config.lidar.mount_height_m;
  Rng scenery_rng(StreamKey(config.seed, {kSceneryStream, scenario}));
  w.scenery_ = PlaceScenery(config, w.layout_, scenery_rng);
  Rng traffic_rng(StreamKey(config.seed, {kTrafficStream, scenario}));
  QV2X_ASSIGN_OR_RETURN(TrafficPlan plan, PlaceTraffic(config, w.layout_, traffic_rng));
  w.actors_ = std::move(plan.actors);
  w.signal_offset_s_ = plan.signal_offset_s;
  for (const AgentConfig& a : config.agents) {
    Seat seat;
    seat.agent_id = a.id;
    if (a.kind == AgentKind::kRsu) {
      seat.fixed = RsuMount(a, w.layout_);
    } else {
      for (size_t i = 0; i < w.actors_.size(); ++i) {
        if (w.actors_[i].agent_id == a.id) seat.actor = static_cast<int>(i);
      }
      if (seat.actor < 0) return absl::InternalError(absl::StrCat("agent ", a.id, " not placed"));
    }
    w.seats_.push_back(seat);
  }
  return w;
}

std::vector<ActorState> World::ActorsAt(double t) const {
  std::vector<ActorState> out;
  out.reserve(actors_.size());
  for (size_t i = 0; i < actors_.size(); ++i) {
    const std::optional<Placement> p = PlaceAt(actors_[i].motion, t);
    if (p) out.push_back({static_cast<int>(i), ActorBox(actors_[i], *p)});
  }
  return out;
}

std::vector<Solid> World::Solids(const std::vector<ActorState>& actors) const {
  std::vector<Solid> out = scenery_;
  out.reserve(scenery_.size() + 3 * actors.size());
  for (const ActorState& s : actors) AppendBody(actors_[s.actor], s.box, s.actor, &out);
  return out;
}

absl::StatusOr<SensorMount> World::Mount(int agent_id, double t) const {
  for (const Seat& seat : seats_) {
    if (seat.agent_id != agent_id) continue;
    if (seat.actor < 0) return seat.fixed;
    // Connected vehicles never leave the map (their lanes run on), so this is set.
    const std::optional<Placement> p = PlaceAt(actors_[seat.actor].motion, t);
    if (!p) return absl::InternalError(absl::StrCat("agent ", agent_id, " is off the map"));
    SensorMount m;
    m.x = p->x;
    m.y = p->y;
    m.z = lidar_height_m_;
    m.yaw_rad = p->yaw;
    m.agent_id = agent_id;
    return m;
  }
  return absl::NotFoundError(absl::StrCat("no agent with id ", agent_id));
}

}  // namespace qv2x::sim
