// Ray-cast rotating LiDAR: rays against the ground plane (z = 0) and upright oriented
// boxes, nearest hit wins (so occlusion needs no extra step), Gaussian range noise, random
// dropout, intensity from the surface's reflectivity and the angle of incidence.
//
// Broad phase: every ray of a sweep starts at the sensor, so each box is binned once per
// sweep by the azimuth interval it covers, with the beams its height can reach and its
// nearest horizontal distance. A ray then tests only its bin's boxes, nearest first, and
// stops as soon as the next box cannot be closer than the current hit.
#ifndef QV2X_CORE_SIM_LIDAR_H_
#define QV2X_CORE_SIM_LIDAR_H_

#include <climits>
#include <vector>

#include "core/data/frame.h"
#include "core/geometry/box.h"
#include "core/sim/rng.h"
#include "core/sim/scene_config.h"
#include "core/sim/street_layout.h"

namespace qv2x::sim {

inline constexpr int kNoAgent = INT_MIN;

// Something the LiDAR can hit: an upright box in the world frame (z = centre height).
struct Solid {
  Box3D box;
  float reflectivity = 0.3f;  // 0..1
  int owner = -1;             // actor index whose points these are; -1: scenery
  int body_of = kNoAgent;     // agent whose own body or mast this is: its LiDAR skips it
};

// Where a sensor sits: world position (z above the ground) and heading.
struct SensorMount {
  double x = 0, y = 0, z = 0;
  double yaw_rad = 0;
  int agent_id = kNoAgent;
};

struct Sweep {
  PointCloud points;                  // sensor frame: x forward, y left, z up
  std::vector<int> points_per_owner;  // returns on each actor, indexed by Solid::owner
};

class Lidar {
 public:
  explicit Lidar(const LidarConfig& config);

  const LidarConfig& config() const { return config_; }
  // Beam elevations in degrees, highest first, evenly spaced over the field of view.
  const std::vector<double>& beam_elevations_deg() const { return elevation_deg_; }

  // One full revolution. `num_owners` sizes points_per_owner. With `noise` null the sweep
  // is exact: no range noise and no dropout.
  Sweep Scan(const std::vector<Solid>& solids, int num_owners, const StreetLayout& ground,
             const SensorMount& mount, Rng* noise) const;

 private:
  LidarConfig config_;
  std::vector<double> elevation_deg_;
  std::vector<double> sin_el_, cos_el_;
  std::vector<double> sin_az_, cos_az_;  // per column, sensor frame
  int cols_per_bin_ = 1;
};

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_LIDAR_H_
