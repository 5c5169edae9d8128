// Pillar pipeline speed on one synthetic 32-beam sweep of 60k points.
#include <cmath>
#include <random>

#include "benchmark/benchmark.h"
#include "core/voxel/pillars.h"

namespace qv2x {
namespace {

// A 32-beam sensor 1.9 m up (+2° ... -25°), 1875 azimuth steps (0.192°): every ray
// returns, from the ground when it reaches it within 120 m, otherwise from an obstacle
// 3-80 m away (walls, cars, poles); 2 cm range noise.
PointCloud SyntheticSweep(uint32_t seed = 7) {
  constexpr int kBeams = 32, kSteps = 1875;
  constexpr double kHeight = 1.9, kMaxRange = 120;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> obstacle(3.0, 80.0), unit(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 0.02);
  PointCloud cloud;
  cloud.reserve(kBeams * kSteps);
  for (int b = 0; b < kBeams; ++b) {
    const double el = DegToRad(2.0 - 27.0 * b / (kBeams - 1));
    for (int s = 0; s < kSteps; ++s) {
      const double az = 2 * kPi * s / kSteps;
      double range = el < 0 ? kHeight / std::tan(-el) : kMaxRange + 1;
      if (range > kMaxRange) range = obstacle(rng);
      range += noise(rng);
      const double horiz = range * std::cos(el);
      cloud.push_back({static_cast<float>(horiz * std::cos(az)),
                       static_cast<float>(horiz * std::sin(az)),
                       static_cast<float>(range * std::sin(el)), static_cast<float>(unit(rng))});
    }
  }
  return cloud;
}

VoxelConfig V2xReal() {
  VoxelConfig c;
  c.lidar_range = {-140.8, -40, -3, 140.8, 40, 1};
  c.voxel_size = {0.4, 0.4, 4};
  c.max_points_per_voxel = 32;
  c.max_voxel_train = 32000;
  c.max_voxel_test = 70000;
  c.use_intensity = false;
  return c;
}

VoxelConfig CpuPreset() {
  VoxelConfig c = V2xReal();
  c.lidar_range = {-51.2, -25.6, -3, 51.2, 25.6, 1};
  return c;
}

void BM_CropPoints(benchmark::State& state) {
  const PointCloud cloud = SyntheticSweep();
  const VoxelConfig cfg = V2xReal();
  for (auto _ : state) benchmark::DoNotOptimize(CropPoints(cloud, cfg));
  state.counters["points_in"] = static_cast<double>(cloud.size());
}
BENCHMARK(BM_CropPoints)->Unit(benchmark::kMillisecond);

void BM_Pillarize(benchmark::State& state, VoxelConfig cfg) {
  const PointCloud cropped = CropPoints(SyntheticSweep(), cfg);
  int pillars = 0;
  for (auto _ : state) {
    Pillars p = Pillarize(cropped, cfg, PillarMode::kTest);
    pillars = p.num_pillars;
    benchmark::DoNotOptimize(p.features.data());
  }
  state.counters["points"] = static_cast<double>(cropped.size());
  state.counters["pillars"] = pillars;
}
BENCHMARK_CAPTURE(BM_Pillarize, v2x_real, V2xReal())->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Pillarize, cpu_preset, CpuPreset())->Unit(benchmark::kMillisecond);

// The whole per-frame preprocessing for four agents.
void BM_CollateFourAgents(benchmark::State& state) {
  SceneFrame frame;
  for (int i = 0; i < 4; ++i) {
    AgentFrame a;
    a.agent_id = i;
    a.lidar_pose = {15.0 * i, 5.0 * i, 1.9, 0, 30.0 * i, 0};
    a.points = SyntheticSweep(100 + i);
    frame.agents.push_back(std::move(a));
  }
  const VoxelConfig cfg = V2xReal();
  for (auto _ : state) {
    auto c = CollateFrame(frame, cfg, 70, 4, PillarMode::kTest);
    benchmark::DoNotOptimize(c->agents.data());
  }
}
BENCHMARK(BM_CollateFourAgents)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace qv2x
