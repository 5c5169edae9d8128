// Places the scene's moving actors: connected vehicles at their configured starts, traffic
// on the lanes, pedestrians on sidewalks and crosswalks.
//
// Collision-free by construction, with no state carried between frames: all vehicles of a
// lane share the lane's speed (gaps never change), and a fixed two-phase signal (east-west
// green in the first half of each cycle, north-south in the second) decides when each
// stream may be inside the intersection. Every vehicle's timing is chosen so it crosses
// only on its own green, like a green wave; pedestrians cross the road on the other phase.
#ifndef QV2X_CORE_SIM_TRAFFIC_H_
#define QV2X_CORE_SIM_TRAFFIC_H_

#include <vector>

#include "absl/status/statusor.h"
#include "core/sim/actor.h"
#include "core/sim/rng.h"
#include "core/sim/scene_config.h"
#include "core/sim/street_layout.h"

namespace qv2x::sim {

struct TrafficPlan {
  std::vector<Actor> actors;  // connected vehicles first, in config order
  double signal_offset_s = 0;
};

// Ids: a connected vehicle's object id is its agent id; other actors count up from
// kFirstTrafficId.
inline constexpr int kFirstTrafficId = 1000;

absl::StatusOr<TrafficPlan> PlaceTraffic(const SceneConfig& config, const StreetLayout& layout,
                                         Rng& rng);

// Unit direction of travel and the right-hand normal of a heading.
void HeadingVectors(Heading h, double* fx, double* fy, double* rx, double* ry);

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_TRAFFIC_H_
