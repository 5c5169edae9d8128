// BEV overlap speed: rotated polygon IoU (evaluation, NMS) and axis-aligned IoU
// (anchor matching).
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/geometry/box.h"

namespace qv2x {
namespace {

// Car-sized box pairs with random headings; `spread` sets how far apart the centres are,
// so a small spread means real polygon clipping and a large one mostly the early reject.
std::vector<std::pair<Box3D, Box3D>> Pairs(double spread, int n = 4096) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> pos(-spread, spread), yaw(-kPi, kPi), len(3.5, 5.0);
  std::vector<std::pair<Box3D, Box3D>> out(n);
  for (auto& [a, b] : out) {
    a = {0, 0, 0, len(rng), 1.8, 1.5, yaw(rng)};
    b = {pos(rng), pos(rng), 0, len(rng), 1.8, 1.5, yaw(rng)};
  }
  return out;
}

void BM_BevIou(benchmark::State& state) {
  const auto pairs = Pairs(state.range(0) / 10.0);
  size_t i = 0;
  for (auto _ : state) {
    const auto& [a, b] = pairs[i++ & (pairs.size() - 1)];
    benchmark::DoNotOptimize(BevIou(a, b));
  }
  state.SetItemsProcessed(state.iterations());
}
// Centres within ±1 m (overlapping) and ±50 m (mostly disjoint).
BENCHMARK(BM_BevIou)->Arg(10)->Arg(500);

void BM_AxisAlignedBevIou(benchmark::State& state) {
  const auto pairs = Pairs(1.0);
  size_t i = 0;
  for (auto _ : state) {
    const auto& [a, b] = pairs[i++ & (pairs.size() - 1)];
    benchmark::DoNotOptimize(AxisAlignedBevIou(a, b));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AxisAlignedBevIou);

}  // namespace
}  // namespace qv2x
