// Target assignment and post-processing at the CPU preset's head grid: 256 x 128 pillars,
// stride 2 -> 128 x 64 cells x 6 anchors = 49,152 anchors.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <random>

#include "core/detection/anchors.h"
#include "core/detection/box_coder.h"
#include "core/detection/postprocess.h"
#include "core/detection/target_assigner.h"

namespace qv2x {
namespace {

StageConfig CpuPresetConfig() {
  StageConfig c;
  c.preprocess.lidar_range = {-51.2, -25.6, -3, 51.2, 25.6, 1};
  c.preprocess.voxel_size = {0.4, 0.4, 4};
  c.postprocess.feature_stride = 2;
  c.postprocess.yaws_deg = {0, 90};
  c.postprocess.classes = {{"vehicle", 3.9, 1.6, 1.56, -1.78, 0.60, 0.45},
                           {"pedestrian", 0.8, 0.6, 1.73, -0.6, 0.50, 0.35},
                           {"truck", 8, 3, 3, -1.78, 0.60, 0.45}};
  c.postprocess.gt_range = c.preprocess.lidar_range;
  c.model.fusion_backbone.layer_strides = {1, 2, 2};
  return c;
}

// 50 boxes: 35 vehicles, 10 pedestrians, 5 trucks, anywhere in range, any heading.
std::vector<LabeledBox> SceneBoxes(int n = 50) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> ux(-48, 48), uy(-23, 23), uyaw(-3.14159, 3.14159),
      us(0.85, 1.15);
  const double sizes[3][3] = {{3.9, 1.6, 1.5}, {0.8, 0.6, 1.7}, {8, 3, 3}};
  std::vector<LabeledBox> gt;
  for (int i = 0; i < n; ++i) {
    const int c = i < 35 ? 0 : i < 45 ? 1 : 2;
    gt.push_back({static_cast<ObjectClass>(c),
                  {ux(rng), uy(rng), -1.2, sizes[c][0] * us(rng), sizes[c][1] * us(rng),
                   sizes[c][2], uyaw(rng)}});
  }
  return gt;
}

void BM_AssignTargets(benchmark::State& state) {
  const StageConfig config = CpuPresetConfig();
  const AnchorGrid grid = *MakeAnchorGrid(config);
  const auto gt = SceneBoxes();
  int positives = 0;
  for (auto _ : state) {
    auto t = AssignTargets(grid, gt, config.model.dir_args);
    positives = t->num_positive;
    benchmark::DoNotOptimize(t->labels.data_ptr());
  }
  state.counters["anchors"] = grid.num_anchors();
  state.counters["positives"] = positives;
}
BENCHMARK(BM_AssignTargets)->Unit(benchmark::kMillisecond);

void BM_AgentOccupancyLabels(benchmark::State& state) {
  const StageConfig config = CpuPresetConfig();
  const AnchorGrid grid = *MakeAnchorGrid(config);
  const auto gt = SceneBoxes();
  const auto strides = OccupancyLevelStrides(config);
  for (auto _ : state) {
    auto occ = AgentOccupancyLabels(grid, gt, strides);
    benchmark::DoNotOptimize(occ->back().data_ptr());
  }
}
BENCHMARK(BM_AgentOccupancyLabels)->Unit(benchmark::kMillisecond);

// Head outputs with 1000 anchors above the score threshold (fewer where clusters overlap).
// clustered: 20 anchors around each of 50 objects regressing to it with noise (what a trained
// head produces; NMS keeps about one per object); otherwise 1000 anchors scattered over the
// map regressing to themselves (little suppression, many kept boxes to check against).
HeadOutputs Candidates(const AnchorGrid& grid, bool clustered) {
  const int A = grid.anchors_per_cell(), H = grid.feature_h, W = grid.feature_w;
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.f, 0.1f);
  std::uniform_real_distribution<float> logit(-1.f, 3.f);  // all above σ⁻¹(0.2) = -1.39
  HeadOutputs out{torch::full({1, A, H, W}, -10.f), torch::zeros({1, 7 * A, H, W}),
                  torch::zeros({1, 2 * A, H, W})};
  auto cls = out.cls.accessor<float, 4>();
  auto reg = out.reg.accessor<float, 4>();
  auto dir = out.dir.accessor<float, 4>();
  const at::Tensor anchors = grid.anchors.to(torch::kFloat64);
  // Scores, then a regression to `target` (or to the anchor itself) plus noise.
  auto plant = [&](int row, int col, int a, const Box3D* target) {
    cls[0][a][row][col] = logit(rng);
    at::Tensor t = torch::zeros({7}, torch::kFloat64);
    if (target != nullptr) {
      const Box3D& b = *target;
      t = EncodeBoxes(torch::tensor({b.x, b.y, b.z, b.l, b.w, b.h, b.yaw}, torch::kFloat64),
                      anchors[row][col][a]);
    }
    for (int k = 0; k < 7; ++k) {
      reg[0][a * 7 + k][row][col] = static_cast<float>(t[k].item<double>()) + noise(rng);
    }
    dir[0][a * 2 + (rng() & 1)][row][col] = 2.f;
  };
  if (clustered) {
    const auto gt = SceneBoxes();
    for (const LabeledBox& b : gt) {
      const int col =
          std::clamp(static_cast<int>((b.box.x - grid.first_x) / grid.step_x), 2, W - 3);
      const int row =
          std::clamp(static_cast<int>((b.box.y - grid.first_y) / grid.step_y), 2, H - 2);
      const int a = static_cast<int>(b.cls) * 2;
      for (int dr = -2; dr < 2; ++dr) {
        for (int dc = -2; dc <= 2; ++dc) plant(row + dr, col + dc, a, &b.box);
      }
    }
  } else {
    std::uniform_int_distribution<int> uc(0, W - 1), ur(0, H - 1), ua(0, A - 1);
    int planted = 0;
    while (planted < 1000) {
      const int row = ur(rng), col = uc(rng), a = ua(rng);
      if (cls[0][a][row][col] > -10.f) continue;
      plant(row, col, a, nullptr);
      ++planted;
    }
  }
  return out;
}

void BM_PostProcess(benchmark::State& state) {
  const StageConfig config = CpuPresetConfig();
  const AnchorGrid grid = *MakeAnchorGrid(config);
  const HeadOutputs out = Candidates(grid, state.range(0) != 0);
  size_t kept = 0;
  for (auto _ : state) {
    auto dets =
        PostProcess(grid, out.cls, out.reg, out.dir, config.postprocess, config.model.dir_args);
    kept = dets->size();
    benchmark::DoNotOptimize(dets->data());
  }
  state.counters["candidates"] = (torch::sigmoid(out.cls) > 0.2).sum().item<int64_t>();
  state.counters["kept"] = static_cast<double>(kept);
}
BENCHMARK(BM_PostProcess)->Arg(1)->Arg(0)->ArgName("clustered")->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace qv2x
