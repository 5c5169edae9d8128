// Bytes on the wire per agent message, by index codec, measured on real index maps: the
// shipped CPU-preset stage-3 model encoding held-out sweeps (configs/scenes/test.yaml) at
// the CPU-preset grid and at the v2x_real grid (the same trained encoder and codebook over
// v2x_real's 281.6 x 80 m range, 352 x 100 indices). For each: mean and p95 of the whole
// serialized FeatureMessage (metadata included) and of the payload, the ratio to the FP32
// feature map, and the order-0 entropy of the index maps (the limit for a coder of
// independent indices). Prints a table, writes JSON (--json FILE, default
// codec_bench.json), then times encode / decode with Google Benchmark.
// Run from the repository root: build/bench/codec_bench [--json FILE] [--frames N].
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>

#include "benchmark/benchmark.h"
#include "core/codec/index_codec.h"
#include "core/common/percentile.h"
#include "core/model/runtime_model.h"
#include "core/sim/scene_config.h"
#include "core/sim/simulator.h"
#include "core/voxel/pillars.h"
#include "nlohmann/json.hpp"
#include "qv2x/v1/features.pb.h"

namespace qv2x {
namespace {

struct MapSet {
  std::string name;
  codec::IndexGrid grid;
  uint64_t fp32_bytes = 0;
  std::vector<std::vector<int32_t>> maps;
};

// A FeatureMessage as an agent sends it, to count metadata too.
uint64_t MessageBytes(const codec::EncodedIndices& e, const codec::IndexGrid& g) {
  v1::FeatureMessage m;
  m.set_agent_id(2);
  m.set_frame_id(123456789);
  m.set_capture_time_unix_ns(1'790'000'000'000'000'000);
  auto* p = m.mutable_lidar_pose();
  p->set_x(-31.7);
  p->set_y(1.75);
  p->set_z(1.9);
  p->set_yaw(179.3);
  auto* gr = m.mutable_grid();
  gr->set_levels(static_cast<uint32_t>(g.levels));
  gr->set_height(static_cast<uint32_t>(g.height));
  gr->set_width(static_cast<uint32_t>(g.width));
  gr->set_dict_size(static_cast<uint32_t>(g.dict_size));
  m.set_codebook_digest("0123456789abcdef");
  m.set_precision(v1::PRECISION_FP32);
  m.set_encoding(e.encoding == codec::IndexEncoding::kZstd ? v1::INDEX_ENCODING_ZSTD
                                                           : v1::INDEX_ENCODING_BITPACK);
  m.set_bits_per_index(e.bits_per_index);
  m.set_decoded_bytes(e.decoded_bytes);
  m.set_payload(e.payload);
  m.set_encode_seconds(0.05);
  m.set_model_generation(1);
  return m.ByteSizeLong();
}

absl::StatusOr<MapSet> Collect(const std::string& name, const std::vector<std::string>& overrides,
                               int frames) {
  auto model = LoadRuntimeModel("configs/cpu/stage3.yaml", "models/cpu-stage3.pth", overrides);
  if (!model.ok()) return model.status();
  auto scene = sim::LoadSceneConfig("configs/scenes/test.yaml");
  if (!scene.ok()) return scene.status();
  auto simulator = sim::Simulator::Create(*scene);
  if (!simulator.ok()) return simulator.status();
  MapSet set;
  set.name = name;
  torch::NoGradGuard no_grad;
  const VoxelConfig& v = model->cfg.preprocess;
  for (int f = 0; f < frames; ++f) {
    const int scenario = f % simulator->num_scenarios();
    const int index = (f / simulator->num_scenarios()) * 7 % scene->frames_per_scenario;
    auto frame = simulator->Frame(scenario, index);
    if (!frame.ok()) return frame.status();
    for (const AgentFrame& a : frame->agents) {
      auto enc = model->detector->agent_encoder()->Encode(
          Pillarize(CropPoints(a.points, v), v, PillarMode::kTest));
      if (!enc.ok()) return enc.status();
      const torch::Tensor idx = enc->indices.to(torch::kInt32).contiguous();
      set.grid = {idx.size(0), idx.size(1), idx.size(2), model->cfg.model.codebook.dict_size};
      set.fp32_bytes = static_cast<uint64_t>(enc->features.numel()) * sizeof(float);
      set.maps.emplace_back(idx.data_ptr<int32_t>(), idx.data_ptr<int32_t>() + idx.numel());
    }
  }
  return set;
}

std::vector<MapSet>& Sets() {
  static std::vector<MapSet> sets;
  return sets;
}

void BM_Encode(benchmark::State& state, size_t set, codec::IndexEncoding e) {
  const MapSet& s = Sets()[set];
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    auto enc = codec::EncodeIndices(s.maps[i++ % s.maps.size()], s.grid, {e});
    bytes += enc->payload.size();
    benchmark::DoNotOptimize(enc);
  }
  state.counters["payload_B"] = static_cast<double>(bytes) / state.iterations();
}

void BM_Decode(benchmark::State& state, size_t set, codec::IndexEncoding e) {
  const MapSet& s = Sets()[set];
  std::vector<codec::EncodedIndices> coded;
  for (const auto& m : s.maps) coded.push_back(*codec::EncodeIndices(m, s.grid, {e}));
  std::vector<int32_t> out;
  size_t i = 0;
  for (auto _ : state) {
    auto st = codec::DecodeIndices(coded[i++ % coded.size()], s.grid, {}, &out);
    benchmark::DoNotOptimize(st);
  }
}

}  // namespace
}  // namespace qv2x

int main(int argc, char** argv) {
  using namespace qv2x;
  std::string json_path = "codec_bench.json";
  int frames = 12;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json_path = argv[++i];
    } else if (std::strcmp(argv[i], "--frames") == 0 && i + 1 < argc) {
      frames = std::atoi(argv[++i]);
    } else {
      rest.push_back(argv[i]);
    }
  }
  for (const auto& [name, ov] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"cpu", {}},
           {"v2x_real_grid",
            {"preprocess.cav_lidar_range=[-140.8, -40, -3, 140.8, 40, 1]",
             "postprocess.gt_range=[-140.8, -40, -3, 140.8, 40, 1]"}}}) {
    auto set = Collect(name, ov, frames);
    if (!set.ok()) {
      std::fprintf(stderr, "codec_bench: %s\n", std::string(set.status().message()).c_str());
      return 1;
    }
    Sets().push_back(std::move(*set));
  }
  nlohmann::json out = nlohmann::json::array();
  std::printf("%-14s %-8s %5s %10s %9s %9s %9s %10s %9s %9s\n", "grid", "codec", "maps", "FP32 B",
              "msg mean", "msg p95", "payload", "xFP32", "H bits", "H limit B");
  for (size_t k = 0; k < Sets().size(); ++k) {
    const MapSet& s = Sets()[k];
    std::vector<double> entropy;
    for (const auto& m : s.maps) entropy.push_back(codec::IndexEntropyBits(m, s.grid.dict_size));
    const double h = std::accumulate(entropy.begin(), entropy.end(), 0.0) / entropy.size();
    for (auto e : {codec::IndexEncoding::kBitpack, codec::IndexEncoding::kZstd}) {
      std::vector<double> msg, payload;
      for (const auto& m : s.maps) {
        auto enc = codec::EncodeIndices(m, s.grid, {e});
        payload.push_back(static_cast<double>(enc->payload.size()));
        msg.push_back(static_cast<double>(MessageBytes(*enc, s.grid)));
      }
      const double mean = std::accumulate(msg.begin(), msg.end(), 0.0) / msg.size();
      const double pay = std::accumulate(payload.begin(), payload.end(), 0.0) / payload.size();
      const double limit = h * s.grid.cells() / 8;
      std::printf("%-14s %-8s %5zu %10llu %9.0f %9.0f %9.0f %10.1f %9.3f %9.0f\n", s.name.c_str(),
                  codec::EncodingName(e), s.maps.size(),
                  static_cast<unsigned long long>(s.fp32_bytes), mean, Percentile(msg, 0.95), pay,
                  s.fp32_bytes / mean, h, limit);
      out.push_back({{"grid", s.name},
                     {"grid_shape", {s.grid.levels, s.grid.height, s.grid.width}},
                     {"dict_size", s.grid.dict_size},
                     {"codec", codec::EncodingName(e)},
                     {"maps", s.maps.size()},
                     {"fp32_feature_bytes", s.fp32_bytes},
                     {"message_bytes_mean", mean},
                     {"message_bytes_p95", Percentile(msg, 0.95)},
                     {"payload_bytes_mean", pay},
                     {"ratio_to_fp32", s.fp32_bytes / mean},
                     {"index_entropy_bits", h},
                     {"entropy_limit_bytes", limit}});
      benchmark::RegisterBenchmark(("encode/" + s.name + "/" + codec::EncodingName(e)).c_str(),
                                   [k, e](benchmark::State& st) { BM_Encode(st, k, e); });
      benchmark::RegisterBenchmark(("decode/" + s.name + "/" + codec::EncodingName(e)).c_str(),
                                   [k, e](benchmark::State& st) { BM_Decode(st, k, e); });
    }
  }
  std::ofstream(json_path) << out.dump(2) << "\n";
  std::printf("wrote %s\n", json_path.c_str());
  int bargc = static_cast<int>(rest.size());
  benchmark::Initialize(&bargc, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
