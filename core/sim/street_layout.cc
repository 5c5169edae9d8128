#include "core/sim/street_layout.h"

#include <algorithm>
#include <cmath>

namespace qv2x::sim {
namespace {

// Crosswalks sit this far out from the intersection box; the conflict zone reaches this
// much past them.
constexpr double kCrosswalkSetbackM = 1.0;
constexpr double kConflictMarginM = 0.5;
// Lane dividers: 3 m of paint every 9 m, 0.15 m wide; the centre line 0.2 m wide.
constexpr double kDashPeriodM = 9.0;
constexpr double kDashLengthM = 3.0;
constexpr double kDividerHalfWidthM = 0.075;
constexpr double kCentreHalfWidthM = 0.1;
// Crosswalk stripes: 0.5 m of paint every 1 m across the road.
constexpr double kStripePeriodM = 1.0;

}  // namespace

StreetLayout::StreetLayout(const MapConfig& map)
    : has_streets(true),
      lanes(map.lanes_per_direction),
      lane_width(map.lane_width_m),
      lanes_edge(map.lanes_per_direction * map.lane_width_m),
      road_half_width(map.RoadHalfWidth()),
      sidewalk_outer(map.RoadHalfWidth() + map.sidewalk_width_m),
      furniture_width(std::min(0.8, map.sidewalk_width_m / 3)),
      crosswalk_near(map.RoadHalfWidth() + kCrosswalkSetbackM),
      crosswalk_far(map.RoadHalfWidth() + kCrosswalkSetbackM + map.crosswalk_width_m),
      conflict_half(map.RoadHalfWidth() + kCrosswalkSetbackM + map.crosswalk_width_m +
                    kConflictMarginM),
      half_length(map.road_half_length_m) {}

float StreetLayout::GroundReflectivity(double x, double y) const {
  if (!has_streets) return kAsphaltReflectivity;
  const double ax = std::abs(x), ay = std::abs(y);
  const bool on_ew = ay <= road_half_width && ax <= half_length;
  const bool on_ns = ax <= road_half_width && ay <= half_length;
  if (on_ew || on_ns) {
    if (on_ew && on_ns) return kAsphaltReflectivity;  // the intersection box is unmarked
    // lat: distance from the centre line; along: distance from the centre along the arm.
    const double lat = on_ew ? ay : ax;
    const double along = on_ew ? ax : ay;
    if (along >= crosswalk_near && along <= crosswalk_far) {
      const double across = (on_ew ? y : x) + road_half_width;
      return std::fmod(across, kStripePeriodM) < kStripePeriodM / 2 ? kMarkingReflectivity
                                                                    : kAsphaltReflectivity;
    }
    if (along < crosswalk_far) return kAsphaltReflectivity;
    if (lat < kCentreHalfWidthM) return kMarkingReflectivity;
    if (lat < road_half_width && std::abs(lat - lanes_edge) < kDividerHalfWidthM) {
      return kMarkingReflectivity;  // solid edge line beside a parking lane
    }
    for (int k = 1; k < lanes; ++k) {
      if (std::abs(lat - k * lane_width) < kDividerHalfWidthM &&
          std::fmod(along, kDashPeriodM) < kDashLengthM) {
        return kMarkingReflectivity;
      }
    }
    return kAsphaltReflectivity;
  }
  const bool on_sidewalk =
      (ay <= sidewalk_outer && ax <= half_length) || (ax <= sidewalk_outer && ay <= half_length);
  return on_sidewalk ? kSidewalkReflectivity : kBlockGroundReflectivity;
}

}  // namespace qv2x::sim
