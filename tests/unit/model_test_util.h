// Shared fixtures of the model tests: small stage configs built in code and synthetic
// pillars / collated frames, so that the tests do not depend on preset files.
#ifndef QV2X_TESTS_UNIT_MODEL_TEST_UTIL_H_
#define QV2X_TESTS_UNIT_MODEL_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "core/config/model_config.h"
#include "core/geometry/transform.h"
#include "core/voxel/pillars.h"

namespace qv2x::testing {

inline std::vector<AnchorClassConfig> SeedClasses() {
  return {{"vehicle", 3.9, 1.6, 1.56, -1.78, 0.6, 0.45},
          {"pedestrian", 0.8, 0.6, 1.73, -0.6, 0.5, 0.35},
          {"truck", 8, 3, 3, -1.78, 0.6, 0.45}};
}

// The v2x_real model as the struct defaults hold it (SPEC §3).
inline StageConfig V2xRealConfig(bool codebook) {
  StageConfig c;
  c.name = "v2x_real_test";
  c.stage = codebook ? 3 : 1;
  c.preprocess.lidar_range = {-140.8, -40, -3, 140.8, 40, 1};
  c.preprocess.voxel_size = {0.4, 0.4, 4};
  c.model.core_method = codebook ? "heter_pyramid_collab_codebook_mc" : "heter_pyramid_collab_mc";
  c.model.with_codebook = codebook;
  c.postprocess.classes = SeedClasses();
  return c;
}

// A model small enough for many forward passes per test: 64 x 32 pillars, 16 channels.
inline StageConfig TinyConfig(bool codebook) {
  StageConfig c = V2xRealConfig(codebook);
  c.name = "tiny_test";
  c.preprocess.lidar_range = {-12.8, -6.4, -3, 12.8, 6.4, 1};
  c.preprocess.max_points_per_voxel = 8;
  c.preprocess.max_voxel_train = 2048;
  c.preprocess.max_voxel_test = 2048;
  c.model.pillar_vfe.num_filters = {16};
  c.model.backbone = {{1}, {2}, {16}, 16, 1e-5};
  auto& p = c.model.fusion_backbone;
  p.layer_nums = {1, 1, 1};
  p.num_filters = {16, 32, 64};
  p.num_upsample_filters = {16, 16, 16};
  c.model.shrink_header.input_dim = 48;
  c.model.shrink_header.dim = 32;
  c.model.codebook = {1, 16, 16, 1};
  return c;
}

// SPEC §3's starting point for the CPU preset: 256 x 128 pillars, the v2x_real agent side,
// a narrower pyramid and shrink header.
inline StageConfig CpuConfig(bool codebook) {
  StageConfig c = V2xRealConfig(codebook);
  c.name = "cpu_test";
  c.preprocess.lidar_range = {-51.2, -25.6, -3, 51.2, 25.6, 1};
  c.preprocess.max_voxel_train = 16000;
  c.preprocess.max_voxel_test = 16000;
  auto& p = c.model.fusion_backbone;
  p.layer_nums = {2, 3, 4};
  p.num_filters = {32, 64, 128};
  p.num_upsample_filters = {64, 64, 64};
  c.model.shrink_header.input_dim = 192;
  c.model.shrink_header.dim = 128;
  return c;
}

// Random pillars on distinct cells, `num_points` in [1, max_points], padded slots zero.
inline Pillars RandomPillars(int grid_h, int grid_w, int max_points, int count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-2.f, 2.f);
  std::uniform_int_distribution<int> points(1, max_points);
  std::vector<int> cells(grid_h * grid_w);
  std::iota(cells.begin(), cells.end(), 0);
  std::shuffle(cells.begin(), cells.end(), rng);
  Pillars p;
  p.grid_h = grid_h;
  p.grid_w = grid_w;
  p.max_points = max_points;
  p.num_pillars = std::min<int>(count, cells.size());
  p.features.assign(static_cast<size_t>(p.num_pillars) * max_points * kNumPointFeatures, 0.f);
  for (int i = 0; i < p.num_pillars; ++i) {
    const int n = points(rng);
    p.num_points.push_back(n);
    p.coords.push_back(cells[i] / grid_w);
    p.coords.push_back(cells[i] % grid_w);
    for (int k = 0; k < n * kNumPointFeatures; ++k) {
      p.features[static_cast<size_t>(i) * max_points * kNumPointFeatures + k] = value(rng);
    }
  }
  return p;
}

// A collated frame of agents at `poses` (ego first) with random pillars on `cfg`'s grid.
inline CollatedFrame MakeFrame(const StageConfig& cfg, const std::vector<Pose>& poses,
                               int pillars_per_agent, unsigned seed) {
  const auto& r = cfg.preprocess.lidar_range;
  const int w = static_cast<int>(std::lround((r[3] - r[0]) / cfg.preprocess.voxel_size[0]));
  const int h = static_cast<int>(std::lround((r[4] - r[1]) / cfg.preprocess.voxel_size[1]));
  CollatedFrame f;
  for (size_t i = 0; i < poses.size(); ++i) {
    AgentInput a;
    a.agent_id = static_cast<int>(i);
    a.lidar_pose = poses[i];
    a.pillars = RandomPillars(h, w, cfg.preprocess.max_points_per_voxel, pillars_per_agent,
                              seed + static_cast<unsigned>(i));
    f.agents.push_back(std::move(a));
  }
  f.pairwise.assign(poses.size(), std::vector<Mat4>(poses.size(), Mat4::Identity()));
  for (size_t i = 0; i < poses.size(); ++i) {
    for (size_t j = 0; j < poses.size(); ++j) {
      if (i != j) f.pairwise[i][j] = RelativeTransform(poses[i], poses[j]);
    }
  }
  for (size_t k = 0; k < poses.size(); ++k) {
    f.warp_to_ego.push_back(NormalizedAffine(f.pairwise[0][k], w, h, cfg.preprocess.voxel_size[0]));
  }
  return f;
}

}  // namespace qv2x::testing

#endif  // QV2X_TESTS_UNIT_MODEL_TEST_UTIL_H_
