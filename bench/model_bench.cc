// Model speed on this machine (SPEC §3): per-agent encode time and fused-frame time for 1,
// 2 and 4 agents at the cpu preset and at v2x_real, with FLOPs per frame counted from the
// conv shapes (core/model/model_cost.h) and the GFLOP/s achieved. Eval mode, inference
// mode, stage-3 model (codebook indices on the wire). Run from the repository root, with
// OMP_NUM_THREADS=2 (BLIS and OpenMP read it) and, on a shared machine,
// OMP_WAIT_POLICY=PASSIVE.
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "benchmark/benchmark.h"
#include "core/model/detector.h"
#include "core/model/model_cost.h"
#include "core/voxel/pillars.h"

namespace qv2x {
namespace {

// A synthetic 32-beam sweep from 1.9 m: ground returns where a beam meets the ground
// within 100 m, otherwise a return from something 4-70 m away; about 60k points.
PointCloud Sweep(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> far(4.0, 70.0), u(0.0, 1.0);
  PointCloud pts;
  for (int beam = 0; beam < 32; ++beam) {
    const double elev = (3.0 - 28.0 * beam / 31.0) * kPi / 180.0;
    for (int step = 0; step < 1800; ++step) {
      const double az = 2.0 * kPi * step / 1800.0;
      double r = elev < 0 ? 1.9 / std::tan(-elev) : 1e9;
      if (r > 100.0) r = far(rng);
      const double flat = r * std::cos(elev);
      pts.push_back({static_cast<float>(flat * std::cos(az)),
                     static_cast<float>(flat * std::sin(az)),
                     static_cast<float>(r * std::sin(elev)), static_cast<float>(u(rng))});
    }
  }
  return pts;
}

std::string ConfigPath(const std::string& preset) {
  // The bench may run from the build folder or the repository root.
  for (std::filesystem::path dir = std::filesystem::current_path(); !dir.empty();
       dir = dir.parent_path()) {
    const auto p = dir / "configs" / preset / "stage3.yaml";
    if (std::filesystem::exists(p)) return p.string();
    if (dir == dir.parent_path()) break;
  }
  return "configs/" + preset + "/stage3.yaml";
}

// One model per preset, built once; frames of 4 agents around the ego.
struct Fixture {
  StageConfig cfg;
  Detector model{nullptr};
  CollatedFrame frame;  // 4 agents
  ModelCost cost;
  std::vector<AgentMessage> messages;  // the 4 agents' encoded indices
};

Fixture& Get(const std::string& preset) {
  static std::map<std::string, std::unique_ptr<Fixture>> cache;
  auto& f = cache[preset];
  if (f) return *f;
  f = std::make_unique<Fixture>();
  auto cfg = LoadStageConfig(ConfigPath(preset));
  if (!cfg.ok()) {
    std::fprintf(stderr, "model_bench: %s\n", std::string(cfg.status().message()).c_str());
    std::exit(1);
  }
  f->cfg = *cfg;
  torch::manual_seed(0);
  auto model = MakeDetector(f->cfg);
  auto cost = EstimateModelCost(f->cfg);
  if (!model.ok() || !cost.ok()) std::exit(1);
  f->model = *model;
  f->model->eval();
  f->model->FreezeForInference();  // as the services run it
  f->cost = *cost;
  const Pose poses[4] = {
      {0, 0, 0, 0, 0, 0}, {12, 3, 0, 0, 15, 0}, {-20, -2, 0, 0, 180, 0}, {6, -8, 0, 0, 90, 0}};
  for (int i = 0; i < 4; ++i) {
    AgentInput a;
    a.agent_id = i;
    a.lidar_pose = poses[i];
    a.pillars = Pillarize(CropPoints(Sweep(100 + i), f->cfg.preprocess), f->cfg.preprocess,
                          PillarMode::kTest);
    f->frame.agents.push_back(std::move(a));
  }
  const int w = f->frame.agents[0].pillars.grid_w, h = f->frame.agents[0].pillars.grid_h;
  for (int i = 0; i < 4; ++i) {
    // As CollateFrame does, the ego's own transform is exactly the identity.
    const Mat4 m = i == 0 ? Mat4::Identity() : RelativeTransform(poses[0], poses[i]);
    f->frame.warp_to_ego.push_back(NormalizedAffine(m, w, h, f->cfg.preprocess.voxel_size[0]));
    auto enc = f->model->agent_encoder()->Encode(f->frame.agents[i].pillars);
    if (!enc.ok()) std::exit(1);
    AgentMessage msg;
    msg.indices = enc->indices.to(torch::kUInt8);
    msg.warp = f->frame.warp_to_ego[i];
    f->messages.push_back(msg);
  }
  return *f;
}

void SetFlops(benchmark::State& state, int64_t macs) {
  const double gflop = 2.0 * static_cast<double>(macs) * 1e-9;
  state.counters["GFLOP"] = gflop;
  state.counters["GFLOP/s"] =
      benchmark::Counter(gflop, benchmark::Counter::kIsIterationInvariantRate);
}

// The agent side: one sweep's pillars → indices.
void BM_Encode(benchmark::State& state, const std::string& preset) {
  Fixture& f = Get(preset);
  const Pillars& p = f.frame.agents[0].pillars;
  for (auto _ : state) {
    auto enc = f.model->agent_encoder()->Encode(p);
    if (!enc.ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(enc->indices.data_ptr());
  }
  state.counters["pillars"] = p.num_pillars;
  SetFlops(state, f.cost.EncodeMacs(p.num_pillars));
}

// The ego side: decode `agents` index maps, pyramid fusion, shrink, heads.
void BM_Fuse(benchmark::State& state, const std::string& preset) {
  Fixture& f = Get(preset);
  const int agents = static_cast<int>(state.range(0));
  const std::vector<AgentMessage> msgs(f.messages.begin(), f.messages.begin() + agents);
  for (auto _ : state) {
    auto out = f.model->ego_fusion()->Fuse(msgs);
    if (!out.ok()) state.SkipWithError("fuse failed");
    benchmark::DoNotOptimize(out->cls.data_ptr());
  }
  SetFlops(state, f.cost.FuseMacs(agents));
}

// A whole frame on one machine: every agent encoded, then fused (Detector eval forward).
void BM_Frame(benchmark::State& state, const std::string& preset) {
  Fixture& f = Get(preset);
  const int agents = static_cast<int>(state.range(0));
  CollatedFrame frame;
  frame.agents.assign(f.frame.agents.begin(), f.frame.agents.begin() + agents);
  frame.warp_to_ego.assign(f.frame.warp_to_ego.begin(), f.frame.warp_to_ego.begin() + agents);
  int64_t macs = f.cost.FuseMacs(agents);
  for (const AgentInput& a : frame.agents) macs += f.cost.EncodeMacs(a.pillars.num_pillars);
  for (auto _ : state) {
    c10::InferenceMode guard;
    auto out = RunDetector(f.model, {&frame});
    if (!out.ok()) state.SkipWithError("forward failed");
    benchmark::DoNotOptimize(out->cls.data_ptr());
  }
  SetFlops(state, macs);
}

BENCHMARK_CAPTURE(BM_Encode, cpu, std::string("cpu"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);
BENCHMARK_CAPTURE(BM_Fuse, cpu, std::string("cpu"))
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);
BENCHMARK_CAPTURE(BM_Frame, cpu, std::string("cpu"))
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);
// v2x_real takes seconds per frame on 2 cores: a few iterations only.
BENCHMARK_CAPTURE(BM_Encode, v2x_real, std::string("v2x_real"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);
BENCHMARK_CAPTURE(BM_Fuse, v2x_real, std::string("v2x_real"))
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);
BENCHMARK_CAPTURE(BM_Frame, v2x_real, std::string("v2x_real"))
    ->Arg(1)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

}  // namespace
}  // namespace qv2x
