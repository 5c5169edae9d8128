#include "core/sim/scene_config.h"

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/config/yaml_reader.h"
#include "core/sim/street_layout.h"

namespace qv2x::sim {
namespace {

enum class Sign { kAny, kNonNegative, kPositive };

// A two-element list [min, max].
absl::StatusOr<Interval> ReadInterval(YamlReader& r, const std::string& key, Sign sign) {
  QV2X_ASSIGN_OR_RETURN(std::vector<double> v, r.Doubles(key, 2));
  if (v[0] > v[1]) {
    return r.Error(
        key, absl::StrCat("expected [min, max] with min <= max, got [", v[0], ", ", v[1], "]"));
  }
  if (sign == Sign::kPositive && v[0] <= 0) {
    return r.Error(key, absl::StrCat("expected positive values, got min ", v[0]));
  }
  if (sign == Sign::kNonNegative && v[0] < 0) {
    return r.Error(key, absl::StrCat("expected non-negative values, got min ", v[0]));
  }
  return Interval{v[0], v[1]};
}

absl::StatusOr<SizeRange> ReadSize(YamlReader& parent, const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YamlReader r, parent.Map(key));
  SizeRange s;
  QV2X_ASSIGN_OR_RETURN(s.length_m, ReadInterval(r, "length_m", Sign::kPositive));
  QV2X_ASSIGN_OR_RETURN(s.width_m, ReadInterval(r, "width_m", Sign::kPositive));
  QV2X_ASSIGN_OR_RETURN(s.height_m, ReadInterval(r, "height_m", Sign::kPositive));
  return s;
}

absl::StatusOr<int> ReadCount(YamlReader& r, const std::string& key, int max) {
  QV2X_ASSIGN_OR_RETURN(int64_t v, r.IntInRange(key, 0, max));
  return static_cast<int>(v);
}

absl::StatusOr<MapConfig> ReadMap(YamlReader& root) {
  QV2X_ASSIGN_OR_RETURN(YamlReader r, root.Map("map"));
  MapConfig m;
  QV2X_ASSIGN_OR_RETURN(m.road_half_length_m, r.DoubleInRange("road_half_length_m", 20, 2000));
  QV2X_ASSIGN_OR_RETURN(int64_t lanes, r.IntInRange("lanes_per_direction", 1, 6));
  m.lanes_per_direction = static_cast<int>(lanes);
  QV2X_ASSIGN_OR_RETURN(m.lane_width_m, r.DoubleInRange("lane_width_m", 2.5, 6));
  QV2X_ASSIGN_OR_RETURN(m.parking_lane_width_m, r.DoubleInRange("parking_lane_width_m", 0, 4));
  QV2X_ASSIGN_OR_RETURN(m.sidewalk_width_m, r.DoubleInRange("sidewalk_width_m", 2.5, 10));
  QV2X_ASSIGN_OR_RETURN(m.crosswalk_width_m, r.DoubleInRange("crosswalk_width_m", 1.5, 8));
  QV2X_ASSIGN_OR_RETURN(YamlReader b, r.Map("buildings"));
  BuildingsConfig& bc = m.buildings;
  QV2X_ASSIGN_OR_RETURN(bc.per_frontage, ReadCount(b, "per_frontage", 50));
  QV2X_ASSIGN_OR_RETURN(bc.setback_m, ReadInterval(b, "setback_m", Sign::kNonNegative));
  QV2X_ASSIGN_OR_RETURN(bc.frontage_m, ReadInterval(b, "frontage_m", Sign::kPositive));
  QV2X_ASSIGN_OR_RETURN(bc.depth_m, ReadInterval(b, "depth_m", Sign::kPositive));
  QV2X_ASSIGN_OR_RETURN(bc.height_m, ReadInterval(b, "height_m", Sign::kPositive));
  QV2X_ASSIGN_OR_RETURN(bc.gap_m, ReadInterval(b, "gap_m", Sign::kNonNegative));
  return m;
}

absl::StatusOr<TrafficConfig> ReadTraffic(YamlReader& root, const MapConfig& map) {
  QV2X_ASSIGN_OR_RETURN(YamlReader r, root.Map("traffic"));
  TrafficConfig t;
  QV2X_ASSIGN_OR_RETURN(t.vehicles, ReadCount(r, "vehicles", 1000));
  QV2X_ASSIGN_OR_RETURN(t.trucks, ReadCount(r, "trucks", 1000));
  QV2X_ASSIGN_OR_RETURN(t.pedestrians, ReadCount(r, "pedestrians", 1000));
  QV2X_ASSIGN_OR_RETURN(t.parked_vehicles, ReadCount(r, "parked_vehicles", 1000));
  QV2X_ASSIGN_OR_RETURN(int64_t parked_trucks, r.IntOr("parked_trucks", 0));
  if (parked_trucks < 0 || parked_trucks > 1000) {
    return r.Error("parked_trucks", "expected 0 to 1000");
  }
  t.parked_trucks = static_cast<int>(parked_trucks);
  QV2X_ASSIGN_OR_RETURN(t.parking_radius_m, r.PositiveDouble("parking_radius_m"));
  QV2X_ASSIGN_OR_RETURN(t.lane_speed_mps, ReadInterval(r, "lane_speed_mps", Sign::kPositive));
  QV2X_ASSIGN_OR_RETURN(t.pedestrian_speed_mps,
                        ReadInterval(r, "pedestrian_speed_mps", Sign::kPositive));
  QV2X_ASSIGN_OR_RETURN(t.crossing_fraction, r.DoubleInRange("crossing_fraction", 0, 1));
  QV2X_ASSIGN_OR_RETURN(t.pedestrian_walk_m, ReadInterval(r, "pedestrian_walk_m", Sign::kPositive));
  QV2X_ASSIGN_OR_RETURN(t.pedestrian_radius_m, r.PositiveDouble("pedestrian_radius_m"));
  QV2X_ASSIGN_OR_RETURN(t.signal_cycle_s, r.PositiveDouble("signal_cycle_s"));
  QV2X_ASSIGN_OR_RETURN(t.signal_clearance_s, r.NonNegativeDouble("signal_clearance_s"));
  QV2X_ASSIGN_OR_RETURN(t.min_gap_m, r.NonNegativeDouble("min_gap_m"));
  QV2X_ASSIGN_OR_RETURN(t.car_size, ReadSize(r, "car_size"));
  QV2X_ASSIGN_OR_RETURN(t.truck_size, ReadSize(r, "truck_size"));
  QV2X_ASSIGN_OR_RETURN(t.pedestrian_size, ReadSize(r, "pedestrian_size"));

  // A vehicle must clear the intersection (crosswalks included) within its green, or the
  // signal timing cannot keep crossing streams apart.
  const double green = t.signal_cycle_s / 2 - 2 * t.signal_clearance_s;
  const double zone = 2 * StreetLayout(map).conflict_half;
  const double longest = std::max(t.car_size.length_m.max, t.truck_size.length_m.max);
  const double crossing_s = (zone + longest) / t.lane_speed_mps.min;
  if (green <= 0 || crossing_s > green) {
    return r.Error("signal_cycle_s",
                   absl::StrCat("a green of ", green, " s is shorter than the ", crossing_s,
                                " s the slowest lane needs to clear the intersection; raise it "
                                "or traffic.lane_speed_mps"));
  }
  if (t.parked_vehicles > 0 && map.parking_lane_width_m < t.car_size.width_m.max) {
    return r.Error("parked_vehicles",
                   "parked cars need map.parking_lane_width_m at least as "
                   "wide as traffic.car_size.width_m");
  }
  if (t.parked_trucks > 0 && map.parking_lane_width_m < t.truck_size.width_m.max) {
    return r.Error("parked_trucks",
                   "parked trucks need map.parking_lane_width_m at least as "
                   "wide as traffic.truck_size.width_m");
  }
  // Lanes must be wide enough for the widest vehicle.
  if (std::max(t.car_size.width_m.max, t.truck_size.width_m.max) > map.lane_width_m) {
    return r.Error("truck_size", "vehicles are wider than map.lane_width_m");
  }
  return t;
}

absl::StatusOr<DistractorConfig> ReadDistractors(YamlReader& root) {
  QV2X_ASSIGN_OR_RETURN(YamlReader r, root.Map("distractors"));
  DistractorConfig d;
  QV2X_ASSIGN_OR_RETURN(d.radius_m, r.PositiveDouble("radius_m"));
  {
    QV2X_ASSIGN_OR_RETURN(YamlReader p, r.Map("poles"));
    QV2X_ASSIGN_OR_RETURN(d.poles.count, ReadCount(p, "count", 1000));
    QV2X_ASSIGN_OR_RETURN(d.poles.height_m, ReadInterval(p, "height_m", Sign::kPositive));
  }
  {
    QV2X_ASSIGN_OR_RETURN(YamlReader p, r.Map("trees"));
    QV2X_ASSIGN_OR_RETURN(d.trees.count, ReadCount(p, "count", 1000));
    QV2X_ASSIGN_OR_RETURN(d.trees.height_m, ReadInterval(p, "height_m", Sign::kPositive));
    QV2X_ASSIGN_OR_RETURN(d.trees.canopy_m, ReadInterval(p, "canopy_m", Sign::kPositive));
    if (d.trees.height_m.min < 5.0) {
      // The canopy starts above truck height so that trucks pass under it.
      return p.Error("height_m", "trees must be at least 5 m tall (canopy above traffic)");
    }
  }
  {
    QV2X_ASSIGN_OR_RETURN(YamlReader p, r.Map("walls"));
    QV2X_ASSIGN_OR_RETURN(d.walls.count, ReadCount(p, "count", 1000));
    QV2X_ASSIGN_OR_RETURN(d.walls.length_m, ReadInterval(p, "length_m", Sign::kPositive));
    QV2X_ASSIGN_OR_RETURN(d.walls.height_m, ReadInterval(p, "height_m", Sign::kPositive));
  }
  {
    QV2X_ASSIGN_OR_RETURN(YamlReader p, r.Map("parked_objects"));
    QV2X_ASSIGN_OR_RETURN(d.parked_objects.count, ReadCount(p, "count", 1000));
    QV2X_ASSIGN_OR_RETURN(d.parked_objects.size, ReadSize(p, "size"));
  }
  return d;
}

absl::StatusOr<LidarConfig> ReadLidar(YamlReader& root) {
  QV2X_ASSIGN_OR_RETURN(YamlReader r, root.Map("lidar"));
  LidarConfig l;
  QV2X_ASSIGN_OR_RETURN(int64_t channels, r.IntInRange("channels", 1, 256));
  l.channels = static_cast<int>(channels);
  QV2X_ASSIGN_OR_RETURN(l.upper_fov_deg, r.DoubleInRange("upper_fov_deg", -89, 89));
  QV2X_ASSIGN_OR_RETURN(l.lower_fov_deg, r.DoubleInRange("lower_fov_deg", -89, 89));
  if (l.lower_fov_deg > l.upper_fov_deg) {
    return r.Error("lower_fov_deg", "must not be above lidar.upper_fov_deg");
  }
  QV2X_ASSIGN_OR_RETURN(l.range_m, r.DoubleInRange("range_m", 1, 1000));
  QV2X_ASSIGN_OR_RETURN(l.min_range_m, r.DoubleInRange("min_range_m", 0, 10));
  if (l.min_range_m >= l.range_m) return r.Error("min_range_m", "must be below lidar.range_m");
  QV2X_ASSIGN_OR_RETURN(l.azimuth_step_deg, r.DoubleInRange("azimuth_step_deg", 0.01, 10));
  const double cols = 360.0 / l.azimuth_step_deg;
  if (std::abs(cols - std::round(cols)) > 1e-6) {
    return r.Error("azimuth_step_deg", "must divide 360 degrees evenly");
  }
  QV2X_ASSIGN_OR_RETURN(l.mount_height_m, r.DoubleInRange("mount_height_m", 0.2, 20));
  QV2X_ASSIGN_OR_RETURN(l.range_noise_m, r.DoubleInRange("range_noise_m", 0, 1));
  QV2X_ASSIGN_OR_RETURN(l.dropout, r.DoubleInRange("dropout", 0, 0.99));
  return l;
}

absl::StatusOr<AgentConfig> ReadAgent(YamlReader& r, const MapConfig& map) {
  AgentConfig a;
  QV2X_ASSIGN_OR_RETURN(int64_t id, r.IntInRange("id", -100000, 100000));
  a.id = static_cast<int>(id);
  QV2X_ASSIGN_OR_RETURN(std::string kind, r.Enum("kind", {"vehicle", "rsu"}));
  if (kind == "vehicle") {
    a.kind = AgentKind::kVehicle;
    if (a.id < 0) return r.Error("id", "vehicle ids must be >= 0 (negative ids are RSUs)");
    QV2X_ASSIGN_OR_RETURN(std::string h, r.Enum("heading", {"east", "west", "north", "south"}));
    a.heading = h == "east"    ? Heading::kEast
                : h == "west"  ? Heading::kWest
                : h == "north" ? Heading::kNorth
                               : Heading::kSouth;
    QV2X_ASSIGN_OR_RETURN(int64_t lane, r.IntInRange("lane", 0, map.lanes_per_direction - 1));
    a.lane = static_cast<int>(lane);
    QV2X_ASSIGN_OR_RETURN(a.start_m, ReadInterval(r, "start_m", Sign::kAny));
    const double limit = map.road_half_length_m - 5;
    if (a.start_m.min < -limit || a.start_m.max > limit) {
      return r.Error("start_m", absl::StrCat("must lie within +-", limit,
                                             " m (map.road_half_length_m less 5 m)"));
    }
  } else {
    a.kind = AgentKind::kRsu;
    if (a.id >= 0) return r.Error("id", "roadside unit ids must be negative (SPEC §9)");
    QV2X_ASSIGN_OR_RETURN(
        std::string c, r.Enum("corner", {"north_east", "north_west", "south_west", "south_east"}));
    a.corner = c == "north_east"   ? Corner::kNorthEast
               : c == "north_west" ? Corner::kNorthWest
               : c == "south_west" ? Corner::kSouthWest
                                   : Corner::kSouthEast;
    QV2X_ASSIGN_OR_RETURN(a.mast_height_m, r.DoubleInRange("mast_height_m", 2, 15));
  }
  return a;
}

absl::StatusOr<SceneConfig> ParseRoot(YamlReader& r) {
  SceneConfig c;
  QV2X_ASSIGN_OR_RETURN(int64_t seed, r.NonNegativeInt("seed"));
  c.seed = static_cast<uint64_t>(seed);
  QV2X_ASSIGN_OR_RETURN(c.name, r.String("name"));
  if (c.name.empty() || c.name.find_first_of("/\\ \t") != std::string::npos) {
    return r.Error("name",
                   "expected a non-empty name without spaces or slashes (it names "
                   "the scenario folders)");
  }
  QV2X_ASSIGN_OR_RETURN(c.rate_hz, r.DoubleInRange("rate_hz", 0.1, 1000));
  QV2X_ASSIGN_OR_RETURN(int64_t scenarios, r.IntInRange("scenarios", 1, 10000));
  c.scenarios = static_cast<int>(scenarios);
  QV2X_ASSIGN_OR_RETURN(int64_t frames, r.IntInRange("frames_per_scenario", 1, 1000000));
  c.frames_per_scenario = static_cast<int>(frames);
  QV2X_ASSIGN_OR_RETURN(std::vector<double> roi, r.Doubles("range_of_interest_m", 2));
  if (roi[0] <= 0 || roi[1] <= 0) {
    return r.Error("range_of_interest_m", "expected two positive half extents [x, y]");
  }
  c.roi_half_x_m = roi[0];
  c.roi_half_y_m = roi[1];
  QV2X_ASSIGN_OR_RETURN(c.map, ReadMap(r));
  QV2X_ASSIGN_OR_RETURN(c.traffic, ReadTraffic(r, c.map));
  QV2X_ASSIGN_OR_RETURN(c.distractors, ReadDistractors(r));
  QV2X_ASSIGN_OR_RETURN(std::vector<YamlReader> agents, r.MapList("agents"));
  std::set<int> ids;
  std::set<int> corners;
  for (YamlReader& a : agents) {
    QV2X_ASSIGN_OR_RETURN(AgentConfig ac, ReadAgent(a, c.map));
    if (!ids.insert(ac.id).second) {
      return a.Error("id", absl::StrCat("duplicate agent id ", ac.id));
    }
    if (ac.kind == AgentKind::kRsu && !corners.insert(static_cast<int>(ac.corner)).second) {
      return a.Error("corner", "another roadside unit already stands at this corner");
    }
    c.agents.push_back(ac);
  }
  QV2X_ASSIGN_OR_RETURN(int64_t ego, r.Int("ego_id"));
  c.ego_id = static_cast<int>(ego);
  if (ids.count(c.ego_id) == 0) {
    return r.Error("ego_id", absl::StrCat("no agent has id ", c.ego_id));
  }
  QV2X_ASSIGN_OR_RETURN(c.lidar, ReadLidar(r));
  QV2X_ASSIGN_OR_RETURN(int64_t min_points, r.IntInRange("visibility_min_points", 1, 100000));
  c.visibility_min_points = static_cast<int>(min_points);
  // The optional `cluster:` section (services, ports, model) has its own loader
  // (core/sim/cluster_config.h); the simulator does not need it.
  r.Ignore("cluster");
  QV2X_RETURN_IF_ERROR(r.Finish());
  return c;
}

}  // namespace

int LidarConfig::Columns() const { return static_cast<int>(std::lround(360.0 / azimuth_step_deg)); }

const AgentConfig* SceneConfig::FindAgent(int id) const {
  for (const AgentConfig& a : agents) {
    if (a.id == id) return &a;
  }
  return nullptr;
}

absl::StatusOr<SceneConfig> ParseSceneConfig(const std::string& yaml_text) {
  QV2X_ASSIGN_OR_RETURN(YamlReader r, YamlReader::FromString(yaml_text));
  return ParseRoot(r);
}

absl::StatusOr<SceneConfig> LoadSceneConfig(const std::string& file) {
  QV2X_ASSIGN_OR_RETURN(YamlReader r, YamlReader::FromFile(file));
  absl::StatusOr<SceneConfig> c = ParseRoot(r);
  if (!c.ok()) {
    return absl::Status(c.status().code(), absl::StrCat(file, ": ", c.status().message()));
  }
  return c;
}

const char* HeadingName(Heading h) {
  switch (h) {
    case Heading::kEast:
      return "east";
    case Heading::kWest:
      return "west";
    case Heading::kNorth:
      return "north";
    case Heading::kSouth:
      return "south";
  }
  return "?";
}

const char* CornerName(Corner c) {
  switch (c) {
    case Corner::kNorthEast:
      return "north_east";
    case Corner::kNorthWest:
      return "north_west";
    case Corner::kSouthWest:
      return "south_west";
    case Corner::kSouthEast:
      return "south_east";
  }
  return "?";
}

}  // namespace qv2x::sim
