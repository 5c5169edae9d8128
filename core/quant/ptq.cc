#include "core/quant/ptq.h"

#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/detection/anchors.h"
#include "core/model/detector.h"
#include "core/model/torch_status.h"
#include "core/quant/int8_runtime.h"
#include "core/quant/ptq_pipeline.h"
#include "core/quant/reconstruction.h"
#include "core/training/frame_source.h"
#include "core/training/sample_builder.h"

namespace qv2x::quant {
namespace {

absl::Status CheckCancel(const std::atomic<bool>* cancel) {
  if (cancel != nullptr && cancel->load()) return absl::CancelledError("PTQ cancelled");
  return absl::OkStatus();
}

// The calibration inputs and outputs of the blocks as PTQ walks through the model.
struct Walk {
  SimNet& net;
  const PtqOptions& opt;
  const PtqProgressFn& progress;
  const std::atomic<bool>* cancel;
  std::mt19937_64 rng;
  std::vector<PtqBlockResult> results;
  int total = 0;

  // Reconstructs `block` on `data`, then replaces data's inputs by the block's outputs.
  absl::Status Step(SimBlock& block, ReconData& data) {
    QV2X_ASSIGN_OR_RETURN(PtqBlockResult r, ReconstructBlock(block, data, opt, rng, cancel));
    results.push_back(r);
    if (progress) {
      PtqProgress p{PtqProgress::kReconstruction,
                    static_cast<int>(results.size()) - 1,
                    total,
                    r.block,
                    r.loss_before,
                    r.loss_after};
      progress(p);
    }
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < data.fp_in.size(); ++i) {
      data.fp_in[i] = block.Forward(data.fp_in[i], SimCtx::Fp());
      data.q_in[i] = block.Forward(data.q_in[i], SimCtx::Quant());
    }
    return CheckCancel(cancel);
  }
};

absl::Status Reconstruct(SimNet& net, const std::vector<const CollatedFrame*>& frames,
                         const std::vector<std::vector<PillarBatch>>& batches,
                         const PtqOptions& opt, const PtqProgressFn& progress,
                         const std::atomic<bool>* cancel, std::vector<PtqBlockResult>* out) {
  Walk w{net, opt, progress, cancel, std::mt19937_64(opt.seed), {}, 0};
  w.total = static_cast<int>(net.spec().Blocks().size());
  const size_t r = std::min<size_t>(opt.recon_samples, frames.size());

  // Agent half: every agent of the first r frames.
  std::vector<const PillarBatch*> agents;
  for (size_t f = 0; f < r; ++f) {
    for (const PillarBatch& b : batches[f]) agents.push_back(&b);
  }
  ReconData data;
  for (const PillarBatch* b : agents) {
    data.fp_in.push_back(b->features);
    data.q_in.push_back(b->features);
  }
  QV2X_RETURN_IF_ERROR(w.Step(net.agent.front(), data));
  for (size_t i = 0; i < agents.size(); ++i) {  // pillar features → BEV maps
    data.fp_in[i] = ScatterAgentToBev(data.fp_in[i], *agents[i], 0);
    data.q_in[i] = ScatterAgentToBev(data.q_in[i], *agents[i], 0);
  }
  for (size_t b = 1; b < net.agent.size(); ++b) QV2X_RETURN_IF_ERROR(w.Step(net.agent[b], data));

  // Ego half: the same frames as the receiver sees them, through the codebook.
  std::vector<int> frame_of;
  ReconData maps;
  {
    torch::NoGradGuard no_grad;
    size_t k = 0;
    for (size_t f = 0; f < r; ++f) {
      for (size_t a = 0; a < batches[f].size(); ++a, ++k) {
        maps.fp_in.push_back(net.EncodeDecode(data.fp_in[k]).second);
        maps.q_in.push_back(net.EncodeDecode(data.q_in[k]).second);
        frame_of.push_back(static_cast<int>(f));
      }
    }
  }
  std::vector<ReconData> decoded(net.trunk.size());
  for (size_t l = 0; l < net.trunk.size(); ++l) {
    for (SimBlock& b : net.trunk[l]) QV2X_RETURN_IF_ERROR(w.Step(b, maps));
    torch::NoGradGuard no_grad;
    for (size_t f = 0; f < r; ++f) {
      std::vector<at::Tensor> fp, q;
      for (size_t i = 0; i < frame_of.size(); ++i) {
        if (frame_of[i] != static_cast<int>(f)) continue;
        fp.push_back(maps.fp_in[i]);
        q.push_back(maps.q_in[i]);
      }
      const at::Tensor warps = WarpTensor(frames[f]->warp_to_ego);
      decoded[l].fp_in.push_back(net.Fuse(static_cast<int64_t>(l), fp, warps));
      decoded[l].q_in.push_back(net.Fuse(static_cast<int64_t>(l), q, warps));
    }
  }
  ReconData head_in;
  for (size_t l = 0; l < net.deconvs.size(); ++l) {
    QV2X_RETURN_IF_ERROR(w.Step(net.deconvs[l], decoded[l]));
  }
  for (size_t f = 0; f < r; ++f) {
    std::vector<at::Tensor> fp, q;
    for (const ReconData& d : decoded) {
      fp.push_back(d.fp_in[f]);
      q.push_back(d.q_in[f]);
    }
    head_in.fp_in.push_back(torch::cat(fp, 1));
    head_in.q_in.push_back(torch::cat(q, 1));
  }
  QV2X_RETURN_IF_ERROR(w.Step(net.shrink, head_in));
  QV2X_RETURN_IF_ERROR(w.Step(net.heads, head_in));
  *out = std::move(w.results);
  return absl::OkStatus();
}

}  // namespace

nlohmann::json PtqBlockResultJson(const PtqBlockResult& r) {
  return {{"block", r.block},
          {"loss_before", r.loss_before},
          {"loss_after", r.loss_after},
          {"learned", r.learned},
          {"seconds", r.seconds}};
}

absl::StatusOr<PtqRun> RunPtq(const StageConfig& cfg, const NamedTensors& fp32_state,
                              const std::vector<const CollatedFrame*>& frames,
                              const PtqOptions& opt, const PtqProgressFn& progress,
                              const std::atomic<bool>* cancel) {
  QV2X_RETURN_IF_ERROR(ValidatePtqOptions(opt));
  if (frames.empty()) return absl::InvalidArgumentError("PTQ: no calibration frames");
  for (const CollatedFrame* f : frames) {
    if (f == nullptr || f->agents.empty() || f->warp_to_ego.size() != f->agents.size()) {
      return absl::InvalidArgumentError("PTQ: a calibration frame has no agents or warps");
    }
  }
  PtqRun run;
  QV2X_ASSIGN_OR_RETURN(run.net, SimNet::Build(cfg, fp32_state));
  SimNet& net = *run.net;
  QV2X_RETURN_IF_ERROR(TorchCall("PTQ", [&]() -> absl::Status {
    if (opt.threads > 0) at::set_num_threads(opt.threads);
    torch::manual_seed(opt.seed);
    std::vector<std::vector<PillarBatch>> batches;
    for (const CollatedFrame* f : frames) {
      batches.emplace_back();
      for (const AgentInput& a : f->agents) batches.back().push_back(MakePillarBatch({&a.pillars}));
    }
    {
      torch::NoGradGuard no_grad;
      // PFN input equalisation: each point feature's largest magnitude.
      at::Tensor d = torch::zeros({kPfnInputs});
      for (const auto& frame : batches) {
        for (const PillarBatch& b : frame) {
          if (b.features.size(0) > 0) d = torch::maximum(d, b.features.abs().amax({0, 1}));
        }
      }
      net.SetPfnInputScale(torch::where(d > 0, d, torch::ones_like(d)));
      SimCtx observe;
      observe.observe = true;
      for (size_t i = 0; i < frames.size(); ++i) {
        std::vector<at::Tensor> maps;
        for (const PillarBatch& b : batches[i]) {
          maps.push_back(net.EncodeDecode(net.AgentForward(b, observe)).second);
        }
        net.EgoForward(maps, WarpTensor(frames[i]->warp_to_ego), observe);
        if (progress) {
          PtqProgress p{PtqProgress::kCalibration,
                        static_cast<int>(i),
                        static_cast<int>(frames.size()),
                        "",
                        0,
                        0};
          progress(p);
        }
        QV2X_RETURN_IF_ERROR(CheckCancel(cancel));
      }
    }
    net.FitQuantizers(opt.n_bits_w, opt.n_bits_a, opt.scale_method);
    if (!opt.reconstruct) return absl::OkStatus();
    return Reconstruct(net, frames, batches, opt, progress, cancel, &run.reconstruction);
  }));
  return run;
}

Int8Artifact ExportInt8Artifact(const SimNet& net, const std::string& config_yaml,
                                const PtqOptions& options,
                                const std::vector<PtqBlockResult>& reconstruction) {
  torch::NoGradGuard no_grad;
  Int8Artifact a;
  a.config_yaml = config_yaml;
  for (const auto& [name, l] : net.layers) {
    Int8Layer q;
    q.shape = l.weight.sizes().vec();
    q.bits = l.wq.bits;
    q.levels = l.Levels().to(torch::kUInt8).contiguous();
    q.scale = l.wq.scale.to(torch::kFloat32).contiguous();
    q.zero_point = l.wq.zero_point.to(torch::kInt32).contiguous();
    q.bias = l.bias.contiguous();
    a.layers[name] = q;
  }
  for (const auto& [name, act] : net.acts) a.acts[name] = act.q;
  a.fp32["encoder_m1.input_scale"] = net.pfn_input_scale();
  for (size_t l = 0; l < net.occupancy_weight.size(); ++l) {
    a.fp32[net.spec().occupancy_heads[l] + ".weight"] = net.occupancy_weight[l];
    a.fp32[net.spec().occupancy_heads[l] + ".bias"] = net.occupancy_bias[l];
  }
  if (!net.codebook.is_empty()) {
    for (int64_t l = 0; l < net.codebook->levels(); ++l) {
      a.fp32[absl::StrCat("codebook.codewords.", l)] = net.codebook->level(l).detach().clone();
    }
    a.codebook_digest = net.codebook->Digest();
  }
  nlohmann::json report;
  report["options"] = PtqOptionsJson(options);
  report["reconstruction"] = nlohmann::json::array();
  for (const PtqBlockResult& r : reconstruction) {
    report["reconstruction"].push_back(PtqBlockResultJson(r));
  }
  a.report_json = report.dump();
  return a;
}

absl::StatusOr<PtqResult> QuantizeCheckpoint(const std::string& config_yaml_path,
                                             const std::string& checkpoint_path,
                                             const std::string& calibration_source,
                                             const PtqOptions& options, const std::string& out_path,
                                             const PtqProgressFn& progress,
                                             const std::atomic<bool>* cancel) {
  const auto t0 = std::chrono::steady_clock::now();
  QV2X_RETURN_IF_ERROR(ValidatePtqOptions(options));
  QV2X_ASSIGN_OR_RETURN(StageConfig cfg, LoadStageConfig(config_yaml_path));
  QV2X_ASSIGN_OR_RETURN(Checkpoint ckpt, ReadCheckpoint(checkpoint_path));
  QV2X_ASSIGN_OR_RETURN(Detector model, MakeDetector(cfg));
  QV2X_RETURN_IF_ERROR(LoadStateDict(*model, ckpt));
  QV2X_ASSIGN_OR_RETURN(AnchorGrid grid, MakeAnchorGrid(cfg));
  QV2X_ASSIGN_OR_RETURN(
      std::unique_ptr<FrameSource> source,
      FrameSource::Open(calibration_source, options.num_cali_batches, DatasetOptionsOf(cfg)));
  std::vector<Sample> samples;
  SampleOptions so;
  so.mode = PillarMode::kTest;
  so.targets = false;
  for (size_t i = 0; i < source->size() && i < static_cast<size_t>(options.num_cali_batches); ++i) {
    QV2X_ASSIGN_OR_RETURN(SceneFrame frame, source->Read(i));
    QV2X_ASSIGN_OR_RETURN(Sample s, BuildSample(frame, cfg, grid, so));
    samples.push_back(std::move(s));
    QV2X_RETURN_IF_ERROR(CheckCancel(cancel));
  }
  std::vector<const CollatedFrame*> frames;
  for (const Sample& s : samples) frames.push_back(&s.collated);

  const NamedTensors state = StateDict(*model);
  QV2X_ASSIGN_OR_RETURN(PtqRun run, RunPtq(cfg, state, frames, options, progress, cancel));
  const std::string yaml = cfg.source_yaml.empty() ? ckpt.meta.config_yaml : cfg.source_yaml;
  Int8Artifact artifact = ExportInt8Artifact(*run.net, yaml, options, run.reconstruction);
  // Load it as the services will before writing it out.
  QV2X_ASSIGN_OR_RETURN(std::shared_ptr<Int8Net> check, Int8Net::Create(artifact));
  QV2X_RETURN_IF_ERROR(CheckCancel(cancel));
  QV2X_RETURN_IF_ERROR(SaveInt8Artifact(artifact, out_path));

  PtqResult r;
  r.artifact_path = out_path;
  std::error_code ec;
  r.artifact_file_bytes = static_cast<int64_t>(std::filesystem::file_size(out_path, ec));
  r.int8_bytes = artifact.PayloadBytes();
  for (const auto& [name, t] : state) r.fp32_bytes += static_cast<int64_t>(t.nbytes());
  r.codebook_digest = artifact.codebook_digest;
  r.engine = check->engine();
  r.reconstruction = run.reconstruction;
  r.options = options;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (progress) {
    PtqProgress done{PtqProgress::kDone, 0, 0, "", 0, 0};
    progress(done);
  }
  return r;
}

}  // namespace qv2x::quant
