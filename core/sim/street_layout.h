// Derived geometry of the simulator's map (one 4-way intersection at the origin): where
// roads, sidewalks, crosswalks and the signal's conflict zone lie, and what the ground is
// made of at a point.
#ifndef QV2X_CORE_SIM_STREET_LAYOUT_H_
#define QV2X_CORE_SIM_STREET_LAYOUT_H_

#include "core/sim/scene_config.h"

namespace qv2x::sim {

// Ground reflectivities (0..1) by surface.
inline constexpr float kAsphaltReflectivity = 0.10f;
inline constexpr float kMarkingReflectivity = 0.65f;
inline constexpr float kSidewalkReflectivity = 0.30f;
inline constexpr float kBlockGroundReflectivity = 0.20f;

struct StreetLayout {
  // A layout without streets: uniform ground (tests and hand-built worlds).
  StreetLayout() = default;
  explicit StreetLayout(const MapConfig& map);

  bool has_streets = false;
  int lanes = 0;
  double lane_width = 0;
  double lanes_edge = 0;       // centre line to the outer lane's edge
  double road_half_width = 0;  // R: centre line to curb (lanes plus parking lane)
  double sidewalk_outer = 0;   // R + sidewalk width: curb side of the corner blocks
  double furniture_width = 0;  // strip along the curb for poles and trees
  double crosswalk_near = 0;   // each arm's crosswalk spans [near, far] from the centre
  double crosswalk_far = 0;
  double conflict_half = 0;  // a vehicle is "in the intersection" while |u| < this + l/2
  double half_length = 0;    // H: each arm's length

  // Reflectivity of the ground at world (x, y): road, lane markings, crosswalk stripes,
  // sidewalk or block ground.
  float GroundReflectivity(double x, double y) const;
};

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_STREET_LAYOUT_H_
