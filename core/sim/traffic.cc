#include "core/sim/traffic.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"

namespace qv2x::sim {
namespace {

constexpr int kPlanAttempts = 64;       // signal offsets tried for the connected vehicles
constexpr int kLaneAttempts = 200;      // lane speeds / starts tried per lane and offset
constexpr int kPlaceAttempts = 400;     // positions tried per traffic actor
constexpr double kScanStepM = 0.5;      // then every spot this far apart, in order
constexpr double kCurbStandoffM = 0.6;  // crossing pedestrians wait this far from the curb
constexpr double kSidewalkMarginM = 0.1;
constexpr double kWalkerSpacingM = 1.0;   // between two walkers' stretches on one path
constexpr double kWalkerStartM = 1.5;     // walkers keep this far beyond the crosswalk corner
constexpr double kParkingSetbackM = 3.0;  // no parking this close past the crosswalk
constexpr double kParkedGapM = 0.8;       // between parked cars
constexpr float kPaintMin = 0.25f, kPaintMax = 0.8f;

double Sample(Rng& rng, const Interval& i) { return rng.Uniform(i.min, i.max); }

double PositiveMod(double a, double m) {
  double r = std::fmod(a, m);
  return r < 0 ? r + m : r;
}

int PhaseOf(Heading h) { return h == Heading::kEast || h == Heading::kWest ? 0 : 1; }

struct Signal {
  double cycle = 0, clearance = 0, offset = 0;
  // True when [t0, t1] lies within a single green of `phase` (its clearances excluded).
  bool Fits(double t0, double t1, int phase) const {
    const double k = std::floor((t0 - offset) / cycle);
    const double a = t0 - offset - k * cycle, b = t1 - offset - k * cycle;
    return a >= phase * cycle / 2 + clearance && b <= (phase + 1) * cycle / 2 - clearance;
  }
};

struct Lane {
  Heading heading = Heading::kEast;
  int index = 0;
  double speed = 0;
  double loop = 0;
  double ox = 0, oy = 0, fx = 0, fy = 0;
  std::vector<std::pair<double, double>> occupied;  // (loop position at t = 0, half length)
};

double CircularGap(double a, double b, double loop) {
  const double d = PositiveMod(a - b, loop);
  return std::min(d, loop - d);
}

bool GapFree(const Lane& lane, double s, double half_len, double min_gap) {
  for (const auto& [o, ohl] : lane.occupied) {
    if (CircularGap(s, o, lane.loop) < half_len + ohl + min_gap) return false;
  }
  return true;
}

std::vector<Lane> MakeLanes(const StreetLayout& layout) {
  std::vector<Lane> lanes;
  for (Heading h : {Heading::kEast, Heading::kWest, Heading::kNorth, Heading::kSouth}) {
    for (int i = 0; i < layout.lanes; ++i) {
      Lane l;
      l.heading = h;
      l.index = i;
      double rx, ry;
      HeadingVectors(h, &l.fx, &l.fy, &rx, &ry);
      const double lateral = (i + 0.5) * layout.lane_width;
      l.ox = lateral * rx;
      l.oy = lateral * ry;
      lanes.push_back(l);
    }
  }
  return lanes;
}

// Loop length for a lane speed: a whole number of signal cycles, so a vehicle meets the
// same phase on every pass.
double LoopLength(double speed, const StreetLayout& layout, double cycle) {
  const double per_cycle = speed * cycle;
  const double n = std::max(1.0, std::ceil(2 * layout.half_length / per_cycle - 1e-9));
  return n * per_cycle;
}

Actor NewVehicle(ObjectClass cls, const SizeRange& size, Rng& rng) {
  Actor a;
  a.cls = cls;
  a.length = Sample(rng, size.length_m);
  a.width = Sample(rng, size.width_m);
  a.height = Sample(rng, size.height_m);
  a.paint = static_cast<float>(rng.Uniform(kPaintMin, kPaintMax));
  return a;
}

// Connected vehicles: lane speeds and starts such that each crosses on its green.
absl::Status PlaceConnectedVehicles(const SceneConfig& config, const StreetLayout& layout, Rng& rng,
                                    Signal* signal, std::vector<Lane>* lanes,
                                    std::vector<Actor>* actors) {
  const TrafficConfig& tc = config.traffic;
  const double z = layout.conflict_half;
  std::vector<int> agent_index;  // config index of each vehicle agent
  for (size_t i = 0; i < config.agents.size(); ++i) {
    if (config.agents[i].kind == AgentKind::kVehicle) agent_index.push_back(static_cast<int>(i));
  }
  std::vector<Actor> bodies;
  for (int i : agent_index) {
    Actor a = NewVehicle(ObjectClass::kVehicle, tc.car_size, rng);
    a.id = config.agents[i].id;
    a.agent_id = config.agents[i].id;
    bodies.push_back(a);
  }
  for (int attempt = 0; attempt < kPlanAttempts; ++attempt) {
    signal->offset = rng.Uniform(0, signal->cycle);
    std::vector<double> starts(agent_index.size());
    std::vector<double> speeds(lanes->size());
    for (Lane& l : *lanes) l.occupied.clear();
    bool all_ok = true;
    for (size_t li = 0; li < lanes->size() && all_ok; ++li) {
      Lane& lane = (*lanes)[li];
      std::vector<size_t> here;
      for (size_t k = 0; k < agent_index.size(); ++k) {
        const AgentConfig& ac = config.agents[agent_index[k]];
        if (ac.heading == lane.heading && ac.lane == lane.index) here.push_back(k);
      }
      lane.speed = Sample(rng, tc.lane_speed_mps);
      lane.loop = LoopLength(lane.speed, layout, signal->cycle);
      if (here.empty()) continue;
      bool ok = false;
      for (int tries = 0; tries < kLaneAttempts && !ok; ++tries) {
        lane.speed = Sample(rng, tc.lane_speed_mps);
        lane.loop = LoopLength(lane.speed, layout, signal->cycle);
        lane.occupied.clear();
        ok = true;
        for (size_t k : here) {
          const AgentConfig& ac = config.agents[agent_index[k]];
          const double start = Sample(rng, ac.start_m);
          const double hl = bodies[k].length / 2;
          const double t0 = (start - z - hl) / lane.speed, t1 = (start + z + hl) / lane.speed;
          const bool timed = t1 < 0 || signal->Fits(std::max(t0, 0.0), t1, PhaseOf(lane.heading));
          const double s = layout.half_length - start;
          if (!timed || !GapFree(lane, s, hl, tc.min_gap_m)) {
            ok = false;
            break;
          }
          lane.occupied.emplace_back(s, hl);
          starts[k] = start;
        }
      }
      all_ok = ok;
    }
    if (!all_ok) continue;
    for (size_t k = 0; k < agent_index.size(); ++k) {
      const AgentConfig& ac = config.agents[agent_index[k]];
      for (const Lane& lane : *lanes) {
        if (lane.heading != ac.heading || lane.index != ac.lane) continue;
        Actor& a = bodies[k];
        a.motion.kind = MotionKind::kLane;
        a.motion.ox = lane.ox;
        a.motion.oy = lane.oy;
        a.motion.dx = lane.fx;
        a.motion.dy = lane.fy;
        a.motion.speed = lane.speed;
        a.motion.loop = 0;
        a.motion.s0 = -starts[k];
        actors->push_back(a);
      }
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      "agents: no lane speed in traffic.lane_speed_mps lets every connected vehicle reach the "
      "intersection on its green from its start_m; widen the start_m ranges or the speeds");
}

absl::Status PlaceLaneTraffic(const SceneConfig& config, const StreetLayout& layout,
                              const Signal& signal, Rng& rng, std::vector<Lane>* lanes,
                              std::vector<Actor>* actors) {
  const TrafficConfig& tc = config.traffic;
  const double z = layout.conflict_half;
  std::vector<ObjectClass> order(tc.trucks, ObjectClass::kTruck);  // longest first
  order.insert(order.end(), tc.vehicles, ObjectClass::kVehicle);
  for (ObjectClass cls : order) {
    Actor a = NewVehicle(cls, cls == ObjectClass::kTruck ? tc.truck_size : tc.car_size, rng);
    const double hl = a.length / 2;
    // Takes loop position s0 of `lane` when the vehicle crosses on its green and fits.
    auto try_at = [&](Lane& lane, double s0) {
      const double t0 = PositiveMod(layout.half_length - z - hl - s0, lane.loop) / lane.speed;
      const double t1 = t0 + (2 * z + 2 * hl) / lane.speed;
      if (!signal.Fits(t0, t1, PhaseOf(lane.heading))) return false;
      if (!GapFree(lane, s0, hl, tc.min_gap_m)) return false;
      lane.occupied.emplace_back(s0, hl);
      a.motion.kind = MotionKind::kLane;
      a.motion.ox = lane.ox;
      a.motion.oy = lane.oy;
      a.motion.dx = lane.fx;
      a.motion.dy = lane.fy;
      a.motion.speed = lane.speed;
      a.motion.loop = lane.loop;
      a.motion.half_length = layout.half_length;
      a.motion.s0 = s0;
      return true;
    };
    bool placed = false;
    for (int tries = 0; tries < kPlaceAttempts && !placed; ++tries) {
      Lane& lane = (*lanes)[rng.Below(static_cast<int64_t>(lanes->size()))];
      placed = try_at(lane, rng.Uniform(0, lane.loop));
    }
    // Dense traffic: random tries miss the last free spots, so scan every lane from a random
    // one for the first spot that fits (scenes that never get here draw the same traffic).
    const size_t first = placed ? 0 : rng.Below(static_cast<int64_t>(lanes->size()));
    for (size_t k = 0; k < lanes->size() && !placed; ++k) {
      Lane& lane = (*lanes)[(first + k) % lanes->size()];
      for (double s0 = 0; s0 < lane.loop && !placed; s0 += kScanStepM) placed = try_at(lane, s0);
    }
    if (!placed) {
      return absl::InvalidArgumentError(
          absl::StrCat("traffic.vehicles: cannot fit ", tc.vehicles, " vehicles and ", tc.trucks,
                       " trucks on ", lanes->size(), " lanes with traffic.min_gap_m ", tc.min_gap_m,
                       "; lower the counts or lengthen map.road_half_length_m"));
    }
    actors->push_back(a);
  }
  return absl::OkStatus();
}

// Parked rows: trucks first (the longest), then cars, in the kerb-side parking lanes.
absl::Status PlaceParkedVehicles(const SceneConfig& config, const StreetLayout& layout, Rng& rng,
                                 std::vector<Actor>* actors) {
  const TrafficConfig& tc = config.traffic;
  if (tc.parked_vehicles + tc.parked_trucks == 0) return absl::OkStatus();
  const double lo = layout.crosswalk_far + kParkingSetbackM;
  const double hi = std::min(layout.half_length, tc.parking_radius_m);
  const double longest = std::max(tc.parked_vehicles > 0 ? tc.car_size.length_m.max : 0.0,
                                  tc.parked_trucks > 0 ? tc.truck_size.length_m.max : 0.0);
  if (hi - lo < longest) {
    return absl::InvalidArgumentError(absl::StrCat("traffic.parking_radius_m: parking starts ", lo,
                                                   " m from the centre; the radius must "
                                                   "leave room for a parked vehicle beyond that"));
  }
  const Heading headings[4] = {Heading::kEast, Heading::kWest, Heading::kNorth, Heading::kSouth};
  const double lateral = (layout.lanes_edge + layout.road_half_width) / 2;
  std::map<int, std::vector<std::pair<double, double>>> taken;  // parking strip -> stretches
  std::vector<ObjectClass> order(tc.parked_trucks, ObjectClass::kTruck);
  order.insert(order.end(), tc.parked_vehicles, ObjectClass::kVehicle);
  for (ObjectClass cls : order) {
    Actor a = NewVehicle(cls, cls == ObjectClass::kTruck ? tc.truck_size : tc.car_size, rng);
    const double hl = a.length / 2;
    // A stretch `along` metres from the centre on `strip` (8 strips: the right-hand kerb of
    // each heading, before or after the intersection) that no parked vehicle takes yet.
    auto free = [&](int strip, double along) {
      for (const auto& [b, e] : taken[strip]) {
        if (along - hl - kParkedGapM < e && along + hl + kParkedGapM > b) return false;
      }
      return true;
    };
    auto park = [&](int strip, double along, double yaw_jitter) {
      taken[strip].emplace_back(along - hl, along + hl);
      double fx, fy, rx, ry;
      HeadingVectors(headings[strip % 4], &fx, &fy, &rx, &ry);
      const double u = strip < 4 ? -along : along;
      const double yaw = std::atan2(fy, fx) + yaw_jitter;
      a.motion.kind = MotionKind::kParked;
      a.motion.ox = u * fx + lateral * rx;
      a.motion.oy = u * fy + lateral * ry;
      a.motion.dx = std::cos(yaw);
      a.motion.dy = std::sin(yaw);
    };
    bool placed = false;
    for (int tries = 0; tries < kPlaceAttempts && !placed; ++tries) {
      const int strip = static_cast<int>(rng.Below(8));
      const double along = rng.Uniform(lo + hl, hi - hl);
      if (!free(strip, along)) continue;
      park(strip, along, rng.Uniform(-0.04, 0.04));
      placed = true;
    }
    // Long rows: scan every strip from a random one for the first free stretch.
    const int first = placed ? 0 : static_cast<int>(rng.Below(8));
    for (int k = 0; k < 8 && !placed; ++k) {
      const int strip = (first + k) % 8;
      for (double along = lo + hl; along <= hi - hl && !placed; along += kScanStepM) {
        if (!free(strip, along)) continue;
        park(strip, along, 0.0);
        placed = true;
      }
    }
    if (!placed) {
      return absl::InvalidArgumentError(absl::StrCat(
          "traffic.parked_vehicles: cannot park ", tc.parked_vehicles, " cars and ",
          tc.parked_trucks, " trucks; lower the counts or raise traffic.parking_radius_m"));
    }
    actors->push_back(a);
  }
  return absl::OkStatus();
}

absl::Status PlacePedestrians(const SceneConfig& config, const StreetLayout& layout,
                              const Signal& signal, Rng& rng, std::vector<Actor>* actors) {
  const TrafficConfig& tc = config.traffic;
  const MapConfig& map = config.map;
  const double r = layout.road_half_width;
  const double slot_w = tc.pedestrian_size.width_m.max + 0.15;
  const int cross_slots = std::max(1, static_cast<int>(map.crosswalk_width_m / slot_w));
  std::vector<char> cross_taken(4 * cross_slots, 0);
  const int want_cross = std::min(
      static_cast<int>(std::lround(tc.crossing_fraction * tc.pedestrians)), 4 * cross_slots);

  // Sidewalk walkers: 8 paths (4 blocks x 2 street fronts), each split into lateral slots.
  const double along_lo = std::max(layout.crosswalk_far, layout.sidewalk_outer) + kWalkerStartM;
  const double along_hi = std::min(layout.half_length, tc.pedestrian_radius_m);
  const double band_lo = r + layout.furniture_width + kSidewalkMarginM;
  const double band = layout.sidewalk_outer - kSidewalkMarginM - band_lo;
  const int walk_slots =
      std::max(1, static_cast<int>(band / (tc.pedestrian_size.width_m.max + 0.1)));
  if (tc.pedestrians > want_cross && along_hi - along_lo < tc.pedestrian_walk_m.min) {
    return absl::InvalidArgumentError(absl::StrCat(
        "traffic.pedestrian_radius_m: sidewalk walkers need at least ",
        along_lo + tc.pedestrian_walk_m.min, " m (crosswalk corner plus the shortest walk)"));
  }
  std::map<int, std::vector<std::pair<double, double>>> walk_taken;  // path slot -> stretches

  for (int i = 0; i < tc.pedestrians; ++i) {
    Actor a;
    a.cls = ObjectClass::kPedestrian;
    a.length = Sample(rng, tc.pedestrian_size.length_m);
    a.width = Sample(rng, tc.pedestrian_size.width_m);
    a.height = Sample(rng, tc.pedestrian_size.height_m);
    a.paint = static_cast<float>(rng.Uniform(kPaintMin, kPaintMax));
    double speed = Sample(rng, tc.pedestrian_speed_mps);
    Motion& m = a.motion;
    if (i < want_cross) {
      int slot;
      do {
        slot = static_cast<int>(rng.Below(4 * cross_slots));
      } while (cross_taken[slot]);
      cross_taken[slot] = 1;
      const int arm = slot / cross_slots;  // 0 east, 1 west, 2 north, 3 south
      const double across =
          layout.crosswalk_near + (slot % cross_slots + 0.5) * map.crosswalk_width_m / cross_slots;
      const double reach = r + kCurbStandoffM;
      m.kind = MotionKind::kCrosswalk;
      m.length = 2 * reach;
      if (arm < 2) {  // crosses the east-west road: walks along y
        m.ox = arm == 0 ? across : -across;
        m.oy = -reach;
        m.dx = 0;
        m.dy = 1;
      } else {
        m.ox = -reach;
        m.oy = arm == 2 ? across : -across;
        m.dx = 1;
        m.dy = 0;
      }
      // Walkers cross a road while its traffic is held: the other phase.
      const int phase = arm < 2 ? 1 : 0;
      const double green = signal.cycle / 2 - 2 * signal.clearance;
      speed = std::max(speed, m.length / green);
      const double walk = m.length / speed;
      m.speed = speed;
      m.cycle = signal.cycle;
      m.offset = signal.offset;
      m.depart = phase * signal.cycle / 2 + signal.clearance + rng.Uniform(0, green - walk);
      m.first_side = static_cast<int>(rng.Below(2));
    } else {
      bool placed = false;
      for (int tries = 0; tries < kPlaceAttempts && !placed; ++tries) {
        const int path = static_cast<int>(rng.Below(8));
        const int slot = static_cast<int>(rng.Below(walk_slots));
        const double len = std::min(Sample(rng, tc.pedestrian_walk_m), along_hi - along_lo);
        const double start = rng.Uniform(along_lo, along_hi - len);
        auto& taken = walk_taken[path * walk_slots + slot];
        bool clear = true;
        for (const auto& [b, e] : taken) {
          if (start < e + kWalkerSpacingM && start + len > b - kWalkerSpacingM) clear = false;
        }
        if (!clear) continue;
        taken.emplace_back(start, start + len);
        const double sx = (path & 1) ? -1 : 1, sy = (path & 2) ? -1 : 1;
        const bool along_x = (path & 4) == 0;
        const double lat = band_lo + (slot + 0.5) * band / walk_slots;
        m.kind = MotionKind::kSidewalk;
        m.ox = along_x ? sx * start : sx * lat;
        m.oy = along_x ? sy * lat : sy * start;
        m.dx = along_x ? sx : 0;
        m.dy = along_x ? 0 : sy;
        m.length = len;
        m.speed = speed;
        m.s0 = rng.Uniform(0, 2 * len);
        placed = true;
      }
      if (!placed) {
        return absl::InvalidArgumentError(
            absl::StrCat("traffic.pedestrians: cannot fit ", tc.pedestrians,
                         " pedestrians on the sidewalks; lower the count or raise "
                         "traffic.pedestrian_radius_m"));
      }
    }
    actors->push_back(a);
  }
  return absl::OkStatus();
}

}  // namespace

void HeadingVectors(Heading h, double* fx, double* fy, double* rx, double* ry) {
  *fx = 1, *fy = 0;  // east
  switch (h) {
    case Heading::kEast:
      break;
    case Heading::kWest:
      *fx = -1, *fy = 0;
      break;
    case Heading::kNorth:
      *fx = 0, *fy = 1;
      break;
    case Heading::kSouth:
      *fx = 0, *fy = -1;
      break;
  }
  // Right-hand traffic: lanes lie to the right of the direction of travel.
  *rx = *fy;
  *ry = -*fx;
}

absl::StatusOr<TrafficPlan> PlaceTraffic(const SceneConfig& config, const StreetLayout& layout,
                                         Rng& rng) {
  TrafficPlan plan;
  Signal signal;
  signal.cycle = config.traffic.signal_cycle_s;
  signal.clearance = config.traffic.signal_clearance_s;
  std::vector<Lane> lanes = MakeLanes(layout);
  absl::Status st = PlaceConnectedVehicles(config, layout, rng, &signal, &lanes, &plan.actors);
  if (!st.ok()) return st;
  plan.signal_offset_s = signal.offset;
  st = PlaceLaneTraffic(config, layout, signal, rng, &lanes, &plan.actors);
  if (!st.ok()) return st;
  st = PlaceParkedVehicles(config, layout, rng, &plan.actors);
  if (!st.ok()) return st;
  st = PlacePedestrians(config, layout, signal, rng, &plan.actors);
  if (!st.ok()) return st;
  int next_id = kFirstTrafficId;
  for (Actor& a : plan.actors) {
    if (a.agent_id == kNoAgent) a.id = next_id++;
  }
  return plan;
}

}  // namespace qv2x::sim
