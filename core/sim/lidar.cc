#include "core/sim/lidar.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace qv2x::sim {
namespace {

// Broad-phase bins are about one degree wide.
constexpr double kBinWidthDeg = 1.0;
// Share of the reflectivity that does not depend on the incidence angle.
constexpr double kDiffuseFloor = 0.2;

// A box as seen from the sensor of the current sweep.
struct Prepared {
  double ox, oy, oz;  // sensor position in the box frame
  double c, s;        // cos / sin of the box yaw
  double hx, hy, hz;  // half extents
  float reflectivity;
  int owner;
};

struct Candidate {
  double dmin;  // horizontal distance from the sensor to the box footprint
  int beam_lo, beam_hi;
  int prepared;
};

int FloorDiv(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Slab test in the box frame. Returns the entry distance along the unit ray, or +inf;
// `cos_incidence` is the cosine between the ray and the entry face's normal.
inline double SlabEnter(const Prepared& p, double dx, double dy, double dz, double* cos_incidence) {
  const double d[3] = {p.c * dx + p.s * dy, -p.s * dx + p.c * dy, dz};
  const double o[3] = {p.ox, p.oy, p.oz};
  const double h[3] = {p.hx, p.hy, p.hz};
  double t_near = -std::numeric_limits<double>::infinity();
  double t_far = std::numeric_limits<double>::infinity();
  int axis = 0;
  for (int k = 0; k < 3; ++k) {
    if (std::abs(d[k]) < 1e-12) {
      if (o[k] < -h[k] || o[k] > h[k]) return std::numeric_limits<double>::infinity();
      continue;
    }
    const double inv = 1.0 / d[k];
    double t1 = (-h[k] - o[k]) * inv, t2 = (h[k] - o[k]) * inv;
    if (t1 > t2) std::swap(t1, t2);
    if (t1 > t_near) {
      t_near = t1;
      axis = k;
    }
    t_far = std::min(t_far, t2);
    if (t_near > t_far) return std::numeric_limits<double>::infinity();
  }
  *cos_incidence = std::abs(d[axis]);
  return t_near;
}

}  // namespace

Lidar::Lidar(const LidarConfig& config) : config_(config) {
  const int n = config_.channels;
  for (int b = 0; b < n; ++b) {
    const double e = n == 1 ? config_.upper_fov_deg
                            : config_.upper_fov_deg +
                                  (config_.lower_fov_deg - config_.upper_fov_deg) * b / (n - 1);
    elevation_deg_.push_back(e);
    sin_el_.push_back(std::sin(DegToRad(e)));
    cos_el_.push_back(std::cos(DegToRad(e)));
  }
  const int cols = config_.Columns();
  for (int j = 0; j < cols; ++j) {
    const double a = DegToRad(j * config_.azimuth_step_deg);
    sin_az_.push_back(std::sin(a));
    cos_az_.push_back(std::cos(a));
  }
  // Bins must tile the revolution exactly, so their width divides the column count.
  cols_per_bin_ =
      std::max(1, static_cast<int>(std::lround(kBinWidthDeg / config_.azimuth_step_deg)));
  while (cols % cols_per_bin_ != 0) --cols_per_bin_;
}

Sweep Lidar::Scan(const std::vector<Solid>& solids, int num_owners, const StreetLayout& ground,
                  const SensorMount& mount, Rng* noise) const {
  const int cols = static_cast<int>(cos_az_.size());
  const int beams = static_cast<int>(elevation_deg_.size());
  const int nbins = (cols + cols_per_bin_ - 1) / cols_per_bin_;
  const double step = DegToRad(config_.azimuth_step_deg);
  const double range = config_.range_m;

  // Broad phase: prepare every box that the sweep can reach and bin it by azimuth.
  std::vector<Prepared> prepared;
  std::vector<Candidate> cands;
  std::vector<std::pair<int, int>> bin_spans;  // first / last bin per candidate
  prepared.reserve(solids.size());
  cands.reserve(solids.size());
  for (const Solid& s : solids) {
    if (s.body_of == mount.agent_id && s.body_of != kNoAgent) continue;
    const Box3D& b = s.box;
    Prepared p;
    p.c = std::cos(b.yaw);
    p.s = std::sin(b.yaw);
    const double rx = mount.x - b.x, ry = mount.y - b.y;
    p.ox = p.c * rx + p.s * ry;
    p.oy = -p.s * rx + p.c * ry;
    p.oz = mount.z - b.z;
    p.hx = b.l / 2;
    p.hy = b.w / 2;
    p.hz = b.h / 2;
    p.reflectivity = s.reflectivity;
    p.owner = s.owner;
    const double ex = std::max(std::abs(p.ox) - p.hx, 0.0);
    const double ey = std::max(std::abs(p.oy) - p.hy, 0.0);
    const double dmin = std::hypot(ex, ey);
    if (dmin > range) continue;
    const double dmax = std::hypot(std::abs(p.ox) + p.hx, std::abs(p.oy) + p.hy);

    Candidate c;
    c.dmin = dmin;
    c.prepared = static_cast<int>(prepared.size());
    int bin_lo = 0, bin_hi = nbins - 1;
    if (dmin > 0) {
      // Elevation interval of the box, seen from the sensor.
      const double z1 = p.hz - p.oz, z0 = -p.hz - p.oz;  // top / bottom relative to sensor
      const double el_max = RadToDeg(std::atan2(z1, z1 > 0 ? dmin : dmax));
      const double el_min = RadToDeg(std::atan2(z0, z0 < 0 ? dmin : dmax));
      constexpr double kEps = 1e-6;
      c.beam_lo = beams;
      c.beam_hi = -1;
      for (int k = 0; k < beams; ++k) {
        if (elevation_deg_[k] <= el_max + kEps && elevation_deg_[k] >= el_min - kEps) {
          c.beam_lo = std::min(c.beam_lo, k);
          c.beam_hi = k;
        }
      }
      if (c.beam_lo > c.beam_hi) continue;
      // Azimuth interval in the sensor frame: corners relative to the centre direction.
      const auto corners = BevCorners(b);
      const double ac = std::atan2(b.y - mount.y, b.x - mount.x) - mount.yaw_rad;
      double lo = 0, hi = 0;
      for (const Vec2& q : corners) {
        const double a = std::atan2(q.y - mount.y, q.x - mount.x) - mount.yaw_rad;
        const double d = WrapAngle(a - ac);
        lo = std::min(lo, d);
        hi = std::max(hi, d);
      }
      const int col_lo = static_cast<int>(std::floor((ac + lo) / step)) - 1;
      const int col_hi = static_cast<int>(std::ceil((ac + hi) / step)) + 1;
      bin_lo = FloorDiv(col_lo, cols_per_bin_);
      bin_hi = FloorDiv(col_hi, cols_per_bin_);
      if (bin_hi - bin_lo + 1 >= nbins) {
        bin_lo = 0;
        bin_hi = nbins - 1;
      }
    } else {
      // The sensor stands over the footprint (e.g. under a canopy): every direction.
      c.beam_lo = 0;
      c.beam_hi = beams - 1;
    }
    prepared.push_back(p);
    cands.push_back(c);
    bin_spans.emplace_back(bin_lo, bin_hi);
  }

  // Bins as compressed rows, each sorted nearest first.
  std::vector<int> bin_start(nbins + 1, 0);
  for (const auto& [lo, hi] : bin_spans) {
    for (int b = lo; b <= hi; ++b) ++bin_start[((b % nbins) + nbins) % nbins + 1];
  }
  for (int b = 0; b < nbins; ++b) bin_start[b + 1] += bin_start[b];
  std::vector<Candidate> binned(bin_start[nbins]);
  {
    std::vector<int> fill(bin_start.begin(), bin_start.end() - 1);
    for (size_t i = 0; i < cands.size(); ++i) {
      for (int b = bin_spans[i].first; b <= bin_spans[i].second; ++b) {
        binned[fill[((b % nbins) + nbins) % nbins]++] = cands[i];
      }
    }
  }
  for (int b = 0; b < nbins; ++b) {
    std::sort(binned.begin() + bin_start[b], binned.begin() + bin_start[b + 1],
              [](const Candidate& x, const Candidate& y) {
                return x.dmin != y.dmin ? x.dmin < y.dmin : x.prepared < y.prepared;
              });
  }

  Sweep out;
  out.points_per_owner.assign(std::max(num_owners, 0), 0);
  out.points.reserve(static_cast<size_t>(cols) * beams / 2);
  const double cy = std::cos(mount.yaw_rad), sy = std::sin(mount.yaw_rad);
  const bool noisy = noise != nullptr;
  for (int j = 0; j < cols; ++j) {
    // World-frame horizontal direction of this column.
    const double ca = cy * cos_az_[j] - sy * sin_az_[j];
    const double sa = sy * cos_az_[j] + cy * sin_az_[j];
    const Candidate* first = binned.data() + bin_start[j / cols_per_bin_];
    const Candidate* last = binned.data() + bin_start[j / cols_per_bin_ + 1];
    for (int k = 0; k < beams; ++k) {
      const double ce = cos_el_[k], se = sin_el_[k];
      const double dx = ca * ce, dy = sa * ce, dz = se;
      double best = range;
      int hit = -2;  // -2 nothing, -1 ground, else index into `prepared`
      double cos_inc = 0;
      if (se < 0) {
        const double t = mount.z / -se;
        if (t < best) {
          best = t;
          hit = -1;
          cos_inc = -se;
        }
      }
      for (const Candidate* c = first; c != last; ++c) {
        if (c->dmin >= best * ce) break;
        if (k < c->beam_lo || k > c->beam_hi) continue;
        double ci = 0;
        const double t = SlabEnter(prepared[c->prepared], dx, dy, dz, &ci);
        if (t < best && t >= config_.min_range_m) {
          best = t;
          hit = c->prepared;
          cos_inc = ci;
        }
      }
      if (hit == -2) continue;
      if (noisy && config_.dropout > 0 && noise->Bernoulli(config_.dropout)) continue;
      float reflectivity;
      if (hit == -1) {
        reflectivity = ground.GroundReflectivity(mount.x + dx * best, mount.y + dy * best);
      } else {
        reflectivity = prepared[hit].reflectivity;
        const int owner = prepared[hit].owner;
        if (owner >= 0 && owner < num_owners) ++out.points_per_owner[owner];
      }
      double r = best;
      if (noisy && config_.range_noise_m > 0) r += config_.range_noise_m * noise->Normal();
      Point pt;
      pt.x = static_cast<float>(r * ce * cos_az_[j]);
      pt.y = static_cast<float>(r * ce * sin_az_[j]);
      pt.z = static_cast<float>(r * se);
      pt.intensity = static_cast<float>(
          std::clamp(reflectivity * (kDiffuseFloor + (1 - kDiffuseFloor) * cos_inc), 0.0, 1.0));
      out.points.push_back(pt);
    }
  }
  return out;
}

}  // namespace qv2x::sim
