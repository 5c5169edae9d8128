// FP32 vs INT8 at the CPU preset (SPEC §7): one agent's encode (pillars → codebook
// indices), the INT8 backbone alone, and the ego side (fusion + heads) for 1-4 agents, on
// frames of the held-out simulated scene with the shipped stage-3 model. The INT8 model
// comes from $QV2X_INT8_ARTIFACT, or is calibrated here (nearest rounding; latency does
// not depend on the rounding). Run from the repository root with OMP_NUM_THREADS=2.
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "core/detection/anchors.h"
#include "core/model/checkpoint.h"
#include "core/model/detector.h"
#include "core/quant/int8_model.h"
#include "core/quant/ptq_pipeline.h"
#include "core/training/frame_source.h"
#include "core/training/sample_builder.h"

namespace qv2x {
namespace {

[[noreturn]] void Die(const absl::Status& s) {
  std::fprintf(stderr, "quant_bench: %s\n", std::string(s.message()).c_str());
  std::exit(1);
}

std::string RepoPath(const std::string& rel) {
  for (std::filesystem::path dir = std::filesystem::current_path(); !dir.empty();
       dir = dir.parent_path()) {
    if (std::filesystem::exists(dir / rel)) return (dir / rel).string();
    if (dir == dir.parent_path()) break;
  }
  return rel;
}

struct Fixture {
  StageConfig cfg;
  Detector model{nullptr};
  std::unique_ptr<quant::Int8AgentEncoder> int8_encoder;
  std::unique_ptr<quant::Int8EgoFusion> int8_fusion;
  Sample frame;  // the held-out frame with the most agents among the first few
  std::vector<AgentMessage> messages;
};

Fixture& Get() {
  static std::unique_ptr<Fixture> f;
  if (f) return *f;
  f = std::make_unique<Fixture>();
  auto cfg = LoadStageConfig(RepoPath("configs/cpu/stage3.yaml"));
  if (!cfg.ok()) Die(cfg.status());
  f->cfg = *cfg;
  auto ckpt = ReadCheckpoint(RepoPath("models/cpu-stage3.pth"));
  if (!ckpt.ok()) Die(ckpt.status());
  auto model = MakeDetector(f->cfg);
  if (!model.ok()) Die(model.status());
  f->model = *model;
  if (auto s = LoadStateDict(*f->model, *ckpt); !s.ok()) Die(s);
  f->model->eval();
  f->model->FreezeForInference();  // the FP32 baseline as the services run it
  auto grid = MakeAnchorGrid(f->cfg);
  if (!grid.ok()) Die(grid.status());
  SampleOptions so;
  so.mode = PillarMode::kTest;
  so.targets = false;
  auto frames = [&](const std::string& scene, int n) {
    auto source = FrameSource::Open("sim:" + RepoPath(scene), n);
    if (!source.ok()) Die(source.status());
    std::vector<Sample> out;
    for (size_t i = 0; i < (*source)->size(); ++i) {
      auto frame = (*source)->Read(i);
      if (!frame.ok()) Die(frame.status());
      auto s = BuildSample(*frame, f->cfg, *grid, so);
      if (!s.ok()) Die(s.status());
      out.push_back(std::move(*s));
    }
    return out;
  };
  for (Sample& s : frames("configs/scenes/test.yaml", 6)) {
    if (s.collated.agents.size() > f->frame.collated.agents.size()) f->frame = std::move(s);
  }
  std::string artifact = std::getenv("QV2X_INT8_ARTIFACT") ? std::getenv("QV2X_INT8_ARTIFACT") : "";
  if (artifact.empty()) {
    const std::vector<Sample> cali = frames("configs/scenes/train.yaml", 4);
    std::vector<const CollatedFrame*> ptrs;
    for (const Sample& s : cali) ptrs.push_back(&s.collated);
    quant::PtqOptions o;
    o.reconstruct = false;
    auto run = quant::RunPtq(f->cfg, StateDict(*f->model), ptrs, o, nullptr, nullptr);
    if (!run.ok()) Die(run.status());
    artifact = (std::filesystem::temp_directory_path() / "quant_bench.int8").string();
    auto s = quant::SaveInt8Artifact(
        quant::ExportInt8Artifact(*run->net, f->cfg.source_yaml, o, {}), artifact);
    if (!s.ok()) Die(s);
  }
  auto enc = quant::Int8AgentEncoder::Load(artifact);
  if (!enc.ok()) Die(enc.status());
  f->int8_encoder = std::move(*enc);
  auto fusion = quant::Int8EgoFusion::Load(artifact);
  if (!fusion.ok()) Die(fusion.status());
  f->int8_fusion = std::move(*fusion);
  for (size_t i = 0; i < f->frame.collated.agents.size(); ++i) {
    auto e = f->model->agent_encoder()->Encode(f->frame.collated.agents[i].pillars);
    if (!e.ok()) Die(e.status());
    f->messages.push_back({torch::Tensor(), e->indices, f->frame.collated.warp_to_ego[i]});
  }
  return *f;
}

const Pillars& EgoPillars() { return Get().frame.collated.agents[0].pillars; }

void BM_EncodeFp32(benchmark::State& state) {
  Fixture& f = Get();
  for (auto _ : state) {
    auto e = f.model->agent_encoder()->Encode(EgoPillars());
    if (!e.ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(e->indices.data_ptr());
  }
  state.counters["pillars"] = EgoPillars().num_pillars;
}

void BM_EncodeInt8(benchmark::State& state) {
  Fixture& f = Get();
  for (auto _ : state) {
    auto idx = f.int8_encoder->EncodeIndices(EgoPillars());
    if (!idx.ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(idx->data_ptr());
  }
  state.counters["pillars"] = EgoPillars().num_pillars;
}

// The INT8 network alone (no codebook search, which stays FP32 in both).
void BM_FeaturesInt8(benchmark::State& state) {
  Fixture& f = Get();
  for (auto _ : state) {
    auto x = f.int8_encoder->EncodeFeatures(EgoPillars());
    if (!x.ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(x->data_ptr());
  }
}

void BM_FeaturesFp32(benchmark::State& state) {
  Fixture& f = Get();
  const PillarBatch batch = MakePillarBatch({&EgoPillars()});
  for (auto _ : state) {
    c10::InferenceMode guard;
    const torch::Tensor x = f.model->agent_encoder()->forward(batch);
    benchmark::DoNotOptimize(x.data_ptr());
  }
}

template <bool kInt8>
void BM_Fuse(benchmark::State& state) {
  Fixture& f = Get();
  const size_t n = std::min<size_t>(state.range(0), f.messages.size());
  const std::vector<AgentMessage> msgs(f.messages.begin(), f.messages.begin() + n);
  for (auto _ : state) {
    auto out = kInt8 ? f.int8_fusion->Fuse(msgs) : f.model->ego_fusion()->Fuse(msgs);
    if (!out.ok()) state.SkipWithError("fuse failed");
    benchmark::DoNotOptimize(out->cls.data_ptr());
  }
  state.counters["agents"] = static_cast<double>(n);
}

BENCHMARK(BM_EncodeFp32)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_EncodeInt8)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_FeaturesFp32)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_FeaturesInt8)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK_TEMPLATE(BM_Fuse, false)
    ->Arg(1)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);
BENCHMARK_TEMPLATE(BM_Fuse, true)
    ->Arg(1)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);

}  // namespace
}  // namespace qv2x
