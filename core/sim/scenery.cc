#include "core/sim/scenery.h"

#include <algorithm>
#include <cmath>

namespace qv2x::sim {
namespace {

constexpr int kPlaceTries = 30;
constexpr double kClearanceM = 0.3;  // free space kept between footprints
constexpr double kMastWidthM = 0.3;
constexpr float kMastReflectivity = 0.55f;
constexpr float kPoleReflectivity = 0.55f;
constexpr float kTrunkReflectivity = 0.30f;
constexpr float kCanopyReflectivity = 0.25f;
constexpr float kWallReflectivity = 0.35f;
constexpr double kWallThicknessM = 0.3;
constexpr double kCanopyBaseM = 4.0;  // above the tallest truck

double Sample(Rng& rng, const Interval& i) { return rng.Uniform(i.min, i.max); }

struct Footprint {
  double x0, y0, x1, y1;
};

Footprint FootprintOf(const Box3D& b, double margin) {
  Footprint f{1e300, 1e300, -1e300, -1e300};
  for (const Vec2& c : BevCorners(b)) {
    f.x0 = std::min(f.x0, c.x - margin);
    f.y0 = std::min(f.y0, c.y - margin);
    f.x1 = std::max(f.x1, c.x + margin);
    f.y1 = std::max(f.y1, c.y + margin);
  }
  return f;
}

bool Overlaps(const Footprint& a, const std::vector<Footprint>& taken) {
  for (const Footprint& b : taken) {
    if (a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1) return true;
  }
  return false;
}

// One of the 8 street fronts: block quadrant (signs sx, sy) and whether the front runs
// along x (beside the east-west road) or along y. `along` is the distance from the
// intersection centre along the street, `lateral` the distance from the road's centre line.
struct Front {
  double sx = 1, sy = 1;
  bool along_x = true;

  static Front Pick(Rng& rng) {
    const int k = static_cast<int>(rng.Below(8));
    return Front{(k & 1) ? -1.0 : 1.0, (k & 2) ? -1.0 : 1.0, (k & 4) == 0};
  }
  // Upright box spanning [a0, a1] along and [b0, b1] laterally, from z0 to z1.
  Box3D Span(double a0, double a1, double b0, double b1, double z0, double z1) const {
    const double a = (a0 + a1) / 2, b = (b0 + b1) / 2;
    Box3D box;
    box.x = along_x ? sx * a : sx * b;
    box.y = along_x ? sy * b : sy * a;
    box.z = (z0 + z1) / 2;
    box.l = along_x ? a1 - a0 : b1 - b0;
    box.w = along_x ? b1 - b0 : a1 - a0;
    box.h = z1 - z0;
    return box;
  }
  double StreetYaw() const { return along_x ? 0.0 : kPi / 2; }
};

class Placer {
 public:
  explicit Placer(std::vector<Solid>* out) : out_(out) {}

  // Adds the solids when `footprint` is free; returns whether it did.
  bool TryAdd(const Footprint& footprint, std::initializer_list<Solid> solids) {
    if (Overlaps(footprint, taken_)) return false;
    taken_.push_back(footprint);
    out_->insert(out_->end(), solids);
    return true;
  }

 private:
  std::vector<Solid>* out_;
  std::vector<Footprint> taken_;
};

Solid MakeSolid(const Box3D& b, float reflectivity, int body_of = kNoAgent) {
  Solid s;
  s.box = b;
  s.reflectivity = reflectivity;
  s.body_of = body_of;
  return s;
}

void PlaceBuildings(const SceneConfig& config, const StreetLayout& layout, Rng& rng,
                    Placer* placer) {
  const BuildingsConfig& bc = config.map.buildings;
  const double base = layout.sidewalk_outer;
  const double end = layout.half_length;
  for (int q = 0; q < 4; ++q) {
    const double sx = (q == 0 || q == 3) ? 1 : -1, sy = q < 2 ? 1 : -1;
    double corner_far = base + Sample(rng, bc.setback_m);  // far side of the corner building
    for (int front = 0; front < 2; ++front) {
      const Front f{sx, sy, front == 0};
      // The first front starts with the corner building; the second starts past it.
      double a = front == 0 ? base + Sample(rng, bc.setback_m) : corner_far + Sample(rng, bc.gap_m);
      for (int i = 0; i < bc.per_frontage && a < end; ++i) {
        const double len = std::min(Sample(rng, bc.frontage_m), end - a);
        const double b0 = base + Sample(rng, bc.setback_m);
        const double b1 = b0 + Sample(rng, bc.depth_m);
        const double h = Sample(rng, bc.height_m);
        const Box3D box = f.Span(a, a + len, b0, b1, 0, h);
        const float refl = static_cast<float>(rng.Uniform(0.25, 0.5));
        placer->TryAdd(FootprintOf(box, kClearanceM), {MakeSolid(box, refl)});
        if (front == 0 && i == 0) corner_far = b1;
        a += len + Sample(rng, bc.gap_m);
      }
    }
  }
}

void PlaceDistractors(const SceneConfig& config, const StreetLayout& layout, Rng& rng,
                      Placer* placer) {
  const DistractorConfig& dc = config.distractors;
  const double r = layout.road_half_width;
  // Street furniture stands on the curb strip, clear of the crosswalk corners.
  const double furniture_lo = std::max(layout.crosswalk_far, layout.sidewalk_outer) + 1.5;
  const double hi = std::min(layout.half_length, dc.radius_m);
  const double curb_lat = r + layout.furniture_width / 2;
  const double block_lo = layout.sidewalk_outer + 1.0;  // along, on the block land
  if (hi <= furniture_lo) return;

  for (int i = 0; i < dc.poles.count; ++i) {
    for (int t = 0; t < kPlaceTries; ++t) {
      const Front f = Front::Pick(rng);
      const double a = rng.Uniform(furniture_lo, hi);
      const double half = rng.Uniform(0.1, 0.175);
      const double h = Sample(rng, dc.poles.height_m);
      const Box3D box = f.Span(a - half, a + half, curb_lat - half, curb_lat + half, 0, h);
      if (placer->TryAdd(FootprintOf(box, kClearanceM), {MakeSolid(box, kPoleReflectivity)})) {
        break;
      }
    }
  }
  for (int i = 0; i < dc.trees.count; ++i) {
    for (int t = 0; t < kPlaceTries; ++t) {
      const Front f = Front::Pick(rng);
      const double a = rng.Uniform(furniture_lo, hi);
      const double half = rng.Uniform(0.15, 0.25);
      const double h = Sample(rng, dc.trees.height_m);
      const double canopy_half = Sample(rng, dc.trees.canopy_m) / 2;
      const double base = std::min(std::max(kCanopyBaseM, 0.4 * h), h - 0.8);
      const Box3D trunk = f.Span(a - half, a + half, curb_lat - half, curb_lat + half, 0, base);
      const Box3D canopy = f.Span(a - canopy_half, a + canopy_half, curb_lat - canopy_half,
                                  curb_lat + canopy_half, base, h);
      if (placer->TryAdd(FootprintOf(canopy, 0), {MakeSolid(trunk, kTrunkReflectivity),
                                                  MakeSolid(canopy, kCanopyReflectivity)})) {
        break;
      }
    }
  }
  for (int i = 0; i < dc.walls.count; ++i) {
    for (int t = 0; t < kPlaceTries; ++t) {
      const Front f = Front::Pick(rng);
      const double len = Sample(rng, dc.walls.length_m);
      if (hi - len <= block_lo) break;
      const double a = rng.Uniform(block_lo, hi - len);
      const double b0 = layout.sidewalk_outer + rng.Uniform(0.2, 0.6);
      const Box3D box =
          f.Span(a, a + len, b0, b0 + kWallThicknessM, 0, Sample(rng, dc.walls.height_m));
      if (placer->TryAdd(FootprintOf(box, kClearanceM), {MakeSolid(box, kWallReflectivity)})) {
        break;
      }
    }
  }
  const SizeRange& ps = dc.parked_objects.size;
  for (int i = 0; i < dc.parked_objects.count; ++i) {
    for (int t = 0; t < kPlaceTries; ++t) {
      const Front f = Front::Pick(rng);
      Box3D box;
      box.l = Sample(rng, ps.length_m);
      box.w = Sample(rng, ps.width_m);
      box.h = Sample(rng, ps.height_m);
      // Along the street or across it, a little askew.
      box.yaw = f.StreetYaw() + (rng.Bernoulli(0.5) ? 0.0 : kPi / 2) + rng.Uniform(-0.15, 0.15);
      const double reach = std::max(box.l, box.w) / 2;
      const double a = rng.Uniform(block_lo + reach, std::max(block_lo + reach, hi));
      const double b = layout.sidewalk_outer + 0.3 + reach + rng.Uniform(0, 5);
      const Box3D at = f.Span(a, a, b, b, 0, box.h);
      box.x = at.x;
      box.y = at.y;
      box.z = box.h / 2;
      const float refl = static_cast<float>(rng.Uniform(0.2, 0.6));
      if (placer->TryAdd(FootprintOf(box, kClearanceM), {MakeSolid(box, refl)})) break;
    }
  }
}

}  // namespace

SensorMount RsuMount(const AgentConfig& rsu, const StreetLayout& layout) {
  double sx = 1, sy = 1;
  switch (rsu.corner) {
    case Corner::kNorthEast:
      break;
    case Corner::kNorthWest:
      sx = -1;
      break;
    case Corner::kSouthWest:
      sx = sy = -1;
      break;
    case Corner::kSouthEast:
      sy = -1;
      break;
  }
  const double c = (layout.road_half_width + layout.sidewalk_outer) / 2;
  SensorMount m;
  m.x = sx * c;
  m.y = sy * c;
  m.z = rsu.mast_height_m;
  m.yaw_rad = std::atan2(-sy, -sx);
  m.agent_id = rsu.id;
  return m;
}

std::vector<Solid> PlaceScenery(const SceneConfig& config, const StreetLayout& layout, Rng& rng) {
  std::vector<Solid> out;
  Placer placer(&out);
  // Masts first: their spots are fixed.
  for (const AgentConfig& a : config.agents) {
    if (a.kind != AgentKind::kRsu) continue;
    const SensorMount m = RsuMount(a, layout);
    Box3D mast;
    mast.x = m.x;
    mast.y = m.y;
    mast.l = mast.w = kMastWidthM;
    // Up to just below the sensor, which sits on top.
    mast.h = m.z - 0.2;
    mast.z = mast.h / 2;
    placer.TryAdd(FootprintOf(mast, kClearanceM), {MakeSolid(mast, kMastReflectivity, a.id)});
  }
  PlaceBuildings(config, layout, rng, &placer);
  PlaceDistractors(config, layout, rng, &placer);
  return out;
}

}  // namespace qv2x::sim
