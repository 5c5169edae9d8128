// Moving objects of the simulated scene (vehicles, trucks, pedestrians): their sizes and
// motions. A motion is a pure function of time, so any frame can be produced directly.
#ifndef QV2X_CORE_SIM_ACTOR_H_
#define QV2X_CORE_SIM_ACTOR_H_

#include <optional>
#include <vector>

#include "core/data/frame.h"
#include "core/geometry/box.h"
#include "core/sim/lidar.h"

namespace qv2x::sim {

enum class MotionKind {
  kLane,       // along a lane at constant speed
  kSidewalk,   // back and forth along a stretch of sidewalk
  kCrosswalk,  // across a crosswalk once per signal cycle, waiting at the curb otherwise
  kParked,     // standing at the origin, facing the direction
};

struct Motion {
  MotionKind kind = MotionKind::kLane;
  // Path: origin and unit direction. Lane: the lane's point abeam the intersection centre
  // (lane coordinate u = 0). Sidewalk: start of the stretch. Crosswalk: end 0 of the crossing.
  double ox = 0, oy = 0;
  double dx = 1, dy = 0;
  double length = 0;  // sidewalk stretch / crosswalk length
  double speed = 0;
  // Lane: loop length; a looping vehicle is on the map while its loop position is within
  // [0, 2 * half_length] and re-enters at the far end of its lane after leaving. 0: the
  // lane runs on forever (connected vehicles are never taken off the map).
  double loop = 0;
  double half_length = 0;
  // Lane: loop position at t = 0 (u + half_length), or u at t = 0 when not looping.
  // Sidewalk: distance walked at t = 0, in [0, 2 * length).
  double s0 = 0;
  // Crosswalk: signal cycle and offset, and when (seconds into the cycle) the walk starts.
  double cycle = 0, offset = 0, depart = 0;
  int first_side = 0;  // end (0 or 1) where the walker waits during cycle 0
};

struct Placement {
  double x = 0, y = 0, yaw = 0;  // world frame, yaw in radians
};

// Where the motion puts its actor at time t; nullopt while it is off the map.
std::optional<Placement> PlaceAt(const Motion& m, double t);

struct Actor {
  int id = 0;
  ObjectClass cls = ObjectClass::kVehicle;
  double length = 0, width = 0, height = 0;
  float paint = 0.5f;       // reflectivity of the body
  int agent_id = kNoAgent;  // set for connected vehicles
  Motion motion;
};

// The ground-truth box of an actor at a placement (z = centre height above the ground).
Box3D ActorBox(const Actor& a, const Placement& p);

// Appends the solids that make up the actor's body inside `box`: a car is a body and a
// narrower cabin, a truck a cab and a cargo box on a chassis, a pedestrian legs, torso and
// head. Their outline differs from a plain box, which is what tells a car from a crate.
void AppendBody(const Actor& a, const Box3D& box, int actor_index, std::vector<Solid>* out);

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_ACTOR_H_
