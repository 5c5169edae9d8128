// Typed form of a simulator scene file (configs/scenes/*.yaml). Every key is explicit;
// parse errors name the key path, e.g. `traffic.lane_speed_mps: expected min <= max`.
#ifndef QV2X_CORE_SIM_SCENE_CONFIG_H_
#define QV2X_CORE_SIM_SCENE_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qv2x::sim {

// A closed range [min, max] that the simulator samples uniformly.
struct Interval {
  double min = 0, max = 0;
};

struct SizeRange {
  Interval length_m, width_m, height_m;
};

// map.buildings: boxes lining both street fronts of each corner block. The corner building
// is what hides the cross street from an approaching vehicle.
struct BuildingsConfig {
  int per_frontage = 0;  // buildings along each of a block's two street fronts
  Interval setback_m;    // sidewalk edge to facade
  Interval frontage_m;   // facade length along the street
  Interval depth_m;
  Interval height_m;
  Interval gap_m;  // between neighbouring buildings
};

// map: two straight roads crossing at the origin (east-west along x, north-south along y),
// right-hand traffic, sidewalks on both sides, a crosswalk on each arm.
struct MapConfig {
  double road_half_length_m = 0;  // each arm, from the intersection centre
  int lanes_per_direction = 0;
  double lane_width_m = 0;
  double parking_lane_width_m = 0;  // strip between the outer lane and the curb; 0: none
  double sidewalk_width_m = 0;
  double crosswalk_width_m = 0;
  BuildingsConfig buildings;

  double RoadHalfWidth() const { return lanes_per_direction * lane_width_m + parking_lane_width_m; }
};

// traffic: vehicles and trucks ride lanes at the lane's speed (so one lane never has a
// collision) and are timed to a fixed two-phase signal so crossing streams never meet;
// pedestrians walk the sidewalks or use the crosswalks on their phase.
struct TrafficConfig {
  int vehicles = 0;
  int trucks = 0;
  int pedestrians = 0;
  int parked_vehicles = 0;      // cars standing in the parking lanes
  int parked_trucks = 0;        // delivery trucks standing there too (optional key, default 0)
  double parking_radius_m = 0;  // parked within this distance of the centre
  Interval lane_speed_mps;
  Interval pedestrian_speed_mps;
  double crossing_fraction = 0;    // share of pedestrians that use the crosswalks
  Interval pedestrian_walk_m;      // length of a sidewalk walker's back-and-forth path
  double pedestrian_radius_m = 0;  // walkers stay within this distance of the centre
  double signal_cycle_s = 0;       // east-west green for the first half, north-south after
  double signal_clearance_s = 0;   // all-red margin at both ends of each green
  double min_gap_m = 0;            // bumper to bumper on one lane
  SizeRange car_size, truck_size, pedestrian_size;
};

struct PoleConfig {
  int count = 0;
  Interval height_m;
};
struct TreeConfig {
  int count = 0;
  Interval height_m;
  Interval canopy_m;  // canopy width
};
struct WallConfig {
  int count = 0;
  Interval length_m;
  Interval height_m;
};
struct ParkedObjectConfig {  // bins, kiosks, containers, barriers: boxes that are no class
  int count = 0;
  SizeRange size;
};
struct DistractorConfig {
  double radius_m = 0;  // placed along the streets within this distance of the centre
  PoleConfig poles;
  TreeConfig trees;
  WallConfig walls;
  ParkedObjectConfig parked_objects;
};

enum class AgentKind { kVehicle, kRsu };
enum class Heading { kEast, kWest, kNorth, kSouth };
enum class Corner { kNorthEast, kNorthWest, kSouthWest, kSouthEast };

struct AgentConfig {
  int id = 0;  // vehicles >= 0, roadside units < 0 (SPEC §9)
  AgentKind kind = AgentKind::kVehicle;
  // kind: vehicle. Drives lane `lane` (0 = next to the centre line) of the road heading
  // `heading`; at t = 0 it is `start_m` before the intersection centre (negative: past it).
  Heading heading = Heading::kEast;
  int lane = 0;
  Interval start_m;
  // kind: rsu. Stands on the sidewalk at `corner`, sensor on top of the mast, facing the
  // intersection centre.
  Corner corner = Corner::kNorthEast;
  double mast_height_m = 0;
};

// lidar: a rotating multi-beam sensor with beams evenly spaced in elevation.
struct LidarConfig {
  int channels = 0;
  double upper_fov_deg = 0;
  double lower_fov_deg = 0;
  double range_m = 0;
  double min_range_m = 0;
  double azimuth_step_deg = 0;
  double mount_height_m = 0;  // above the ground, for vehicles
  double range_noise_m = 0;   // Gaussian sigma
  double dropout = 0;         // probability that a return is lost

  int Columns() const;  // sweeps per revolution: 360 / azimuth_step_deg
};

struct SceneConfig {
  uint64_t seed = 0;
  std::string name;
  double rate_hz = 0;
  int scenarios = 0;            // independent episodes, each re-sampled from the seed
  int frames_per_scenario = 0;  // episode length
  double roi_half_x_m = 0;      // range of interest around the ego (ego frame)
  double roi_half_y_m = 0;
  MapConfig map;
  TrafficConfig traffic;
  DistractorConfig distractors;
  std::vector<AgentConfig> agents;
  int ego_id = 0;
  LidarConfig lidar;
  int visibility_min_points = 0;  // points an agent needs on an object to count it seen

  const AgentConfig* FindAgent(int id) const;
};

absl::StatusOr<SceneConfig> ParseSceneConfig(const std::string& yaml_text);
// Errors are prefixed with the file name.
absl::StatusOr<SceneConfig> LoadSceneConfig(const std::string& file);

const char* HeadingName(Heading h);
const char* CornerName(Corner c);

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_SCENE_CONFIG_H_
