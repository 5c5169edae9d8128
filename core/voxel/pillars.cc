// CropPoints and Pillarize (SPEC §3): spconv-style first-come pillar assignment followed
// by PillarVFE's 10-feature augmentation, done once here so the model only reshapes.
#include "core/voxel/pillars.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace qv2x {
namespace {

// Scratch reused across calls on one thread, so a sweep costs no allocation beyond the
// output itself. `cell_to_pillar` is kept all -1 between calls: only the cells a call
// touched are reset on the way out.
struct PillarScratch {
  std::vector<int32_t> cell_to_pillar;
  std::vector<int32_t> point_slot;  // per input point: pillar * max_points + slot, or -1
  std::vector<double> sums;         // per pillar: x, y, z sums of the kept points
};

PillarScratch& Scratch() {
  thread_local PillarScratch s;
  return s;
}

}  // namespace

PointCloud CropPoints(const PointCloud& in, const VoxelConfig& cfg) {
  const auto& r = cfg.lidar_range;
  const auto& body = cfg.ego_body_box;
  PointCloud out;
  out.reserve(in.size());
  for (const Point& p : in) {
    // Half-open range [lo, hi) so every kept point has a valid pillar index; NaN fails
    // every comparison and is dropped too.
    const bool in_range =
        p.x >= r[0] && p.x < r[3] && p.y >= r[1] && p.y < r[4] && p.z >= r[2] && p.z < r[5];
    if (!in_range) continue;
    const bool on_body = p.x >= body[0] && p.x <= body[2] && p.y >= body[1] && p.y <= body[3];
    if (on_body) continue;
    out.push_back(p);
    if (!cfg.use_intensity) out.back().intensity = 0.0f;
  }
  return out;
}

Pillars Pillarize(const PointCloud& cropped, const VoxelConfig& cfg, PillarMode mode) {
  const auto& r = cfg.lidar_range;
  const double vx = cfg.voxel_size[0], vy = cfg.voxel_size[1], vz = cfg.voxel_size[2];
  Pillars out;
  out.grid_w = cfg.grid_w();
  out.grid_h = cfg.grid_h();
  out.max_points = cfg.max_points_per_voxel;
  const int max_pillars = mode == PillarMode::kTrain ? cfg.max_voxel_train : cfg.max_voxel_test;
  if (out.grid_w <= 0 || out.grid_h <= 0 || !(vz > 0) || out.max_points <= 0 || max_pillars <= 0) {
    return out;
  }
  const int w = out.grid_w, h = out.grid_h, m = out.max_points;
  const size_t cells = static_cast<size_t>(w) * h;

  PillarScratch& s = Scratch();
  if (s.cell_to_pillar.size() != cells) s.cell_to_pillar.assign(cells, -1);
  s.point_slot.resize(cropped.size());

  // Pass 1: pillar and slot of each point, in input order (first come, first kept).
  int num_pillars = 0;
  out.num_points.reserve(std::min<size_t>(cropped.size(), max_pillars));
  out.coords.reserve(2 * out.num_points.capacity());
  const double inv_vx = 1.0 / vx, inv_vy = 1.0 / vy;
  for (size_t i = 0; i < cropped.size(); ++i) {
    const Point& p = cropped[i];
    s.point_slot[i] = -1;
    const double fx = std::floor((p.x - r[0]) * inv_vx);
    const double fy = std::floor((p.y - r[1]) * inv_vy);
    if (!(fx >= 0 && fx < w && fy >= 0 && fy < h && p.z >= r[2] && p.z < r[5])) continue;
    const int col = static_cast<int>(fx), row = static_cast<int>(fy);
    int32_t& pillar = s.cell_to_pillar[static_cast<size_t>(row) * w + col];
    if (pillar < 0) {
      if (num_pillars == max_pillars) continue;
      pillar = num_pillars++;
      out.num_points.push_back(0);
      out.coords.push_back(row);
      out.coords.push_back(col);
    }
    int32_t& n = out.num_points[pillar];
    if (n == m) continue;
    s.point_slot[i] = pillar * m + n;
    ++n;
  }
  out.num_pillars = num_pillars;

  // Pass 2: raw features and per-pillar sums.
  out.features.assign(static_cast<size_t>(num_pillars) * m * kNumPointFeatures, 0.0f);
  s.sums.assign(static_cast<size_t>(num_pillars) * 3, 0.0);
  for (size_t i = 0; i < cropped.size(); ++i) {
    const int32_t slot = s.point_slot[i];
    if (slot < 0) continue;
    const Point& p = cropped[i];
    float* f = &out.features[static_cast<size_t>(slot) * kNumPointFeatures];
    f[kFeatX] = p.x;
    f[kFeatY] = p.y;
    f[kFeatZ] = p.z;
    f[kFeatIntensity] = p.intensity;
    double* sum = &s.sums[static_cast<size_t>(slot / m) * 3];
    sum[0] += p.x;
    sum[1] += p.y;
    sum[2] += p.z;
  }

  // Pass 3: offsets to the point mean and to the pillar centre; padded slots stay 0.
  const double cz = r[2] + vz / 2;
  for (int pi = 0; pi < num_pillars; ++pi) {
    const int n = out.num_points[pi];
    const double* sum = &s.sums[static_cast<size_t>(pi) * 3];
    const double mx = sum[0] / n, my = sum[1] / n, mz = sum[2] / n;
    const int row = out.coords[2 * pi], col = out.coords[2 * pi + 1];
    const double cx = r[0] + (col + 0.5) * vx, cy = r[1] + (row + 0.5) * vy;
    float* f = &out.features[static_cast<size_t>(pi) * m * kNumPointFeatures];
    for (int k = 0; k < n; ++k, f += kNumPointFeatures) {
      const double x = f[kFeatX], y = f[kFeatY], z = f[kFeatZ];
      f[kFeatMeanDx] = static_cast<float>(x - mx);
      f[kFeatMeanDy] = static_cast<float>(y - my);
      f[kFeatMeanDz] = static_cast<float>(z - mz);
      f[kFeatCenterDx] = static_cast<float>(x - cx);
      f[kFeatCenterDy] = static_cast<float>(y - cy);
      f[kFeatCenterDz] = static_cast<float>(z - cz);
    }
    // Leave the shared index clean for the next call.
    s.cell_to_pillar[static_cast<size_t>(row) * w + col] = -1;
  }
  return out;
}

}  // namespace qv2x
