// `qv2x model inputs` writes one collated frame (pillars, poses, pairwise transforms) of a
// scene or dataset as a file of tensors (torch.save's format or NumPy's .npz); `qv2x model forward`
// runs a checkpoint on such a file and writes every head's output and the intermediate tensors,
// optionally timing the agent half, the ego half and the whole frame. Torch-free:
// core/model/model_forward.h.
#include "tools/qv2x/cmd_model_forward.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/status_macros.h"
#include "core/config/model_config.h"
#include "core/model/intra_op_threads.h"
#include "core/model/model_forward.h"
#include "core/training/frame_source.h"
#include "nlohmann/json.hpp"

namespace qv2x::cli {

const char kModelForwardUsage[] =
    R"(usage: qv2x model inputs --config FILE (--scene SCENE.yaml | --dataset DIR) [--frame N]
                         --out IN.pth|IN.npz [--set key.path=value ...]
       qv2x model forward --config FILE --checkpoint CKPT --inputs IN.pth [--out OUT.pth]
                          [--repeat N [--timing FILE.json]] [--profile N] [--threads N]
                          [--unfrozen]
                          [--set key.path=value ...]

inputs   Collates frame N (default 0) of a scene or dataset as the trainer and `qv2x infer`
         do (the ego and up to max_cav - 1 agents within comm_range, pillars at the test-time
         cap) and writes it as a PyTorch-readable dict of tensors (torch.load), or as a
         NumPy .npz (np.load, no torch needed) when the path ends in .npz: grid_size,
         agent_ids, lidar_pose, pairwise and agents.<i>.{features,num_points,coords}
         (docs/model-forward.md).
forward  Runs CKPT on IN.pth as the services do: every agent through the agent encoder,
         then the ego half on their codebook indices (features without a codebook), and
         writes to OUT.pth the heads (cls, reg, dir) and the tensors that localise a
         mismatch: per-agent pillar features, bev_features (before the codebook),
         indices.<level>, decoded, warp_to_ego, and per pyramid level its features,
         occupancy logits, warped features, fusion weights and fused map, then fused and
         shrink. bench/pytorch_reference.py check compares it with PyTorch.
         IN may also be an .npz (np.savez or np.savez_compressed; little-endian float32/64,
         int8/16/32/64, uint8 or bool arrays, C or Fortran order), and OUT ending in .npz is
         written as one, with the same keys.
         --repeat N times N more runs: one agent's encode, the ego half fusing every agent,
         and the whole frame (every agent encoded, then fused); prints the medians, and
         --timing writes every run's seconds as JSON.
         --profile N runs the whole frame N more times under LibTorch's profiler and prints
         where the time goes: self time per operator, then the convolutions (and matrix
         products) by input shapes with their GFLOP/s; with --timing, the rows go into the
         JSON too ("profile").
         --unfrozen runs the plain eval layers instead of the services' frozen convolutions
         (BatchNorm folded, ReLU fused, weights packed), to measure what freezing gives.)";

namespace {

double MedianMs(std::vector<double> s) {
  if (s.empty()) return 0;
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  return 1e3 * (n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]));
}

// Self time per operator, then the ops LibTorch counts FLOPs for, by input shapes.
void PrintProfile(const ForwardReport& r) {
  double self_sum = 0;
  for (const OpProfileRow& row : r.profile) self_sum += row.self_ms;
  std::printf("\nprofile: one whole frame %.2f ms under the profiler, %.2f ms inside operators\n",
              r.profile_frame_ms, self_sum);
  std::printf("%-40s %8s %10s %7s\n", "operator", "calls", "self ms", "share");
  const std::vector<OpProfileRow> by_name = ByOpName(r.profile);
  for (size_t i = 0; i < by_name.size() && i < 20; ++i) {
    const OpProfileRow& row = by_name[i];
    std::printf("%-40s %8.0f %10.2f %6.1f%%\n", row.op.c_str(), row.calls, row.self_ms,
                100 * row.self_ms / std::max(r.profile_frame_ms, 1e-9));
  }
  std::vector<OpProfileRow> counted;
  for (const OpProfileRow& row : r.profile) {
    if (row.gflop > 0 && row.total_ms > 0) counted.push_back(row);
  }
  std::sort(counted.begin(), counted.end(),
            [](const OpProfileRow& a, const OpProfileRow& b) { return a.total_ms > b.total_ms; });
  std::printf(
      "\nthe counted operators by total time (sgemm 2048^3 on this machine now: %.1f "
      "GFLOP/s)\n%-14s %6s %9s %7s %8s %6s  %s\n",
      r.sgemm_gflops, "operator", "calls", "total ms", "GFLOP", "GFLOP/s", "sgemm", "input shapes");
  for (size_t i = 0; i < counted.size() && i < 20; ++i) {
    const OpProfileRow& row = counted[i];
    const double rate = row.gflop / (row.total_ms / 1e3);
    std::printf("%-14s %6.0f %9.2f %7.3f %8.1f %5.0f%%  %s\n", row.op.c_str(), row.calls,
                row.total_ms, row.gflop, rate, 100 * rate / std::max(r.sgemm_gflops, 1e-9),
                row.shapes.c_str());
  }
}

std::string PillarCounts(const CollatedFrame& frame) {
  std::vector<int> counts;
  for (const AgentInput& a : frame.agents) counts.push_back(a.pillars.num_pillars);
  return absl::StrJoin(counts, ", ");
}

}  // namespace

absl::Status RunInputsCommand(Args& args) {
  QV2X_ASSIGN_OR_RETURN(std::string config, args.Required("config"));
  const std::string scene = args.GetOr("scene", "");
  const std::string dataset = args.GetOr("dataset", "");
  QV2X_ASSIGN_OR_RETURN(int64_t index, args.IntOr("frame", 0));
  QV2X_ASSIGN_OR_RETURN(std::string out, args.Required("out"));
  const std::vector<std::string> overrides = args.All("set");
  QV2X_RETURN_IF_ERROR(args.Finish());
  if (scene.empty() == dataset.empty()) {
    return absl::InvalidArgumentError("give exactly one of --scene and --dataset");
  }
  if (index < 0) return absl::InvalidArgumentError("--frame must be >= 0");
  QV2X_ASSIGN_OR_RETURN(StageConfig cfg, LoadStageConfig(config, overrides));
  QV2X_ASSIGN_OR_RETURN(auto source, FrameSource::Open(scene.empty() ? dataset : "sim:" + scene, 0,
                                                       DatasetOptionsOf(cfg)));
  if (static_cast<size_t>(index) >= source->size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--frame ", index, ": the source has ", source->size(), " frames"));
  }
  QV2X_ASSIGN_OR_RETURN(SceneFrame frame, source->Read(static_cast<size_t>(index)));
  QV2X_ASSIGN_OR_RETURN(CollatedFrame collated,
                        CollateFrame(frame, cfg.preprocess, cfg.comm_range,
                                     cfg.train_params.max_cav, PillarMode::kTest));
  QV2X_RETURN_IF_ERROR(WriteModelInputs(collated, out));
  std::vector<int> ids;
  for (const AgentInput& a : collated.agents) ids.push_back(a.agent_id);
  std::printf("wrote %s: frame %s, %zu agents (ids %s), pillars %s\n", out.c_str(),
              source->FrameName(static_cast<size_t>(index)).c_str(), collated.agents.size(),
              absl::StrJoin(ids, ", ").c_str(), PillarCounts(collated).c_str());
  return absl::OkStatus();
}

absl::Status RunForwardCommand(Args& args) {
  QV2X_ASSIGN_OR_RETURN(std::string config, args.Required("config"));
  QV2X_ASSIGN_OR_RETURN(std::string checkpoint, args.Required("checkpoint"));
  QV2X_ASSIGN_OR_RETURN(std::string inputs, args.Required("inputs"));
  ForwardOptions options;
  options.out = args.GetOr("out", "");
  QV2X_ASSIGN_OR_RETURN(int64_t repeat, args.IntOr("repeat", 0));
  const std::string timing = args.GetOr("timing", "");
  QV2X_ASSIGN_OR_RETURN(int64_t threads, args.IntOr("threads", 0));
  QV2X_ASSIGN_OR_RETURN(int64_t profile, args.IntOr("profile", 0));
  options.freeze = !args.Switch("unfrozen");
  const std::vector<std::string> overrides = args.All("set");
  QV2X_RETURN_IF_ERROR(args.Finish());
  if (repeat < 0 || repeat > 100000) {
    return absl::InvalidArgumentError(absl::StrCat("--repeat must be 0 to 100000, got ", repeat));
  }
  if (profile < 0 || profile > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("--profile must be 0 to 10000, got ", profile));
  }
  if (options.out.empty() && repeat == 0 && profile == 0) {
    return absl::InvalidArgumentError(
        "give --out, --repeat or --profile (nothing to do otherwise)");
  }
  if (!timing.empty() && repeat == 0) return absl::InvalidArgumentError("--timing needs --repeat");
  options.profile_runs = static_cast<int>(profile);
  if (threads < 0) return absl::InvalidArgumentError("--threads must be >= 0");
  options.repeat = static_cast<int>(repeat);
  if (threads > 0) SetIntraOpThreads(static_cast<int>(threads));
  QV2X_ASSIGN_OR_RETURN(StageConfig cfg, LoadStageConfig(config, overrides));
  QV2X_ASSIGN_OR_RETURN(CollatedFrame frame, ReadModelInputs(inputs, cfg.preprocess));
  QV2X_ASSIGN_OR_RETURN(ForwardReport r, RunModelForward(cfg, checkpoint, frame, options));
  std::printf(
      "%s on %s: %zu agents, pillars %s%s\n", checkpoint.c_str(), inputs.c_str(),
      frame.agents.size(), PillarCounts(frame).c_str(),
      r.codebook_digest.empty() ? "" : absl::StrCat(", codebook ", r.codebook_digest).c_str());
  // The written intermediates come from a second pass over the ego half; this says how far
  // its heads are from the written ones (expected 0).
  std::printf("intermediate path vs EgoFusion::Fuse heads: max rel diff %.3g\n",
              r.intermediate_path_rel_diff);
  if (!options.out.empty()) std::printf("wrote %s\n", options.out.c_str());
  if (repeat > 0) {
    std::printf(
        "median of %lld runs: encode 1 agent %.2f ms, fuse %zu agents %.2f ms, "
        "frame %.2f ms\n",
        static_cast<long long>(repeat), MedianMs(r.encode_s), frame.agents.size(),
        MedianMs(r.fuse_s), MedianMs(r.frame_s));
  }
  if (profile > 0) PrintProfile(r);
  if (!timing.empty()) {
    std::vector<int> pillars;
    for (const AgentInput& a : frame.agents) pillars.push_back(a.pillars.num_pillars);
    nlohmann::json j = {{"checkpoint", checkpoint},
                        {"config", config},
                        {"inputs", inputs},
                        {"agents", frame.agents.size()},
                        {"pillars", pillars},
                        {"threads", threads},
                        {"repeat", repeat},
                        {"encode_s", r.encode_s},
                        {"fuse_s", r.fuse_s},
                        {"frame_s", r.frame_s},
                        {"median_ms",
                         {{"encode", MedianMs(r.encode_s)},
                          {"fuse", MedianMs(r.fuse_s)},
                          {"frame", MedianMs(r.frame_s)}}}};
    if (profile > 0) {
      nlohmann::json rows = nlohmann::json::array();
      for (const OpProfileRow& row : r.profile) {
        rows.push_back({{"op", row.op},
                        {"shapes", row.shapes},
                        {"calls", row.calls},
                        {"self_ms", row.self_ms},
                        {"total_ms", row.total_ms},
                        {"gflop", row.gflop}});
      }
      j["profile"] = {{"runs", profile},
                      {"frame_ms", r.profile_frame_ms},
                      {"sgemm_gflops", r.sgemm_gflops},
                      {"rows", rows}};
    }
    std::ofstream f(timing);
    f << j.dump(2) << "\n";
    if (!f) return absl::InternalError(absl::StrCat("could not write ", timing));
  }
  return absl::OkStatus();
}

}  // namespace qv2x::cli
