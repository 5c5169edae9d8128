#include "core/quant/ptq_report.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "core/detection/postprocess.h"
#include "core/model/checkpoint.h"
#include "core/model/detector.h"
#include "core/quant/int8_artifact.h"
#include "core/quant/int8_model.h"
#include "core/training/evaluator.h"
#include "core/training/frame_source.h"
#include "core/training/sample_builder.h"

namespace qv2x::quant {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int64_t FileBytes(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

struct Timings {
  std::vector<double> encode, e2e, fusion;
  ApAccumulator acc;
};

// One frame through one precision: encode every agent, fuse, decode boxes.
template <typename EncodeFn, typename FuseFn>
absl::Status RunFrame(const Sample& s, const StageConfig& cfg, const AnchorGrid& grid,
                      EncodeFn&& encode, FuseFn&& fuse, Timings* t, bool record) {
  const auto frame_start = Clock::now();
  std::vector<AgentMessage> messages;
  std::vector<double> encodes;
  for (size_t i = 0; i < s.collated.agents.size(); ++i) {
    const auto t0 = Clock::now();
    QV2X_ASSIGN_OR_RETURN(AgentMessage m, encode(s.collated.agents[i].pillars));
    encodes.push_back(Seconds(t0));
    m.warp = s.collated.warp_to_ego[i];
    messages.push_back(std::move(m));
  }
  const auto t1 = Clock::now();
  QV2X_ASSIGN_OR_RETURN(HeadOutput out, fuse(messages));
  QV2X_ASSIGN_OR_RETURN(
      std::vector<Detection> dets,
      PostProcess(grid, out.cls, out.reg, out.dir, cfg.postprocess, cfg.model.dir_args));
  const double fusion = Seconds(t1), e2e = Seconds(frame_start);
  if (!record) return absl::OkStatus();
  t->encode.insert(t->encode.end(), encodes.begin(), encodes.end());
  t->fusion.push_back(fusion);
  t->e2e.push_back(e2e);
  t->acc.AddFrame(ToEvalBoxes(dets), ToEvalBoxes(s.gt));
  return absl::OkStatus();
}

nlohmann::json PrecisionJson(const PrecisionReport& p) {
  nlohmann::json j = {{"bytes", p.bytes},
                      {"file_bytes", p.file_bytes},
                      {"encode_latency_p50_s", p.encode_latency_p50_s},
                      {"e2e_latency_p50_s", p.e2e_latency_p50_s},
                      {"fusion_latency_p50_s", p.fusion_latency_p50_s}};
  nlohmann::json ap = nlohmann::json::object(), map = nlohmann::json::object();
  for (int c = 0; c < kNumClasses; ++c) {
    nlohmann::json per = nlohmann::json::object();
    for (size_t t = 0; t < p.ap.iou_thresholds.size(); ++t) {
      per[absl::StrFormat("%g", p.ap.iou_thresholds[t])] = p.ap.ap[c][t];
    }
    ap[ClassName(static_cast<ObjectClass>(c))] = per;
  }
  for (size_t t = 0; t < p.ap.iou_thresholds.size(); ++t) {
    map[absl::StrFormat("%g", p.ap.iou_thresholds[t])] = p.ap.map[t];
  }
  j["ap"] = ap;
  j["map"] = map;
  return j;
}

}  // namespace

absl::StatusOr<PtqReport> CompareFp32Int8(const std::string& config_yaml_path,
                                          const std::string& checkpoint_path,
                                          const std::string& artifact_path,
                                          const std::string& eval_source,
                                          const CompareOptions& options) {
  QV2X_ASSIGN_OR_RETURN(StageConfig cfg, LoadStageConfig(config_yaml_path));
  QV2X_ASSIGN_OR_RETURN(Checkpoint ckpt, ReadCheckpoint(checkpoint_path));
  QV2X_ASSIGN_OR_RETURN(Detector model, MakeDetector(cfg));
  QV2X_RETURN_IF_ERROR(LoadStateDict(*model, ckpt));
  model->eval();
  AgentEncoder fp_enc = model->agent_encoder();
  EgoFusion fp_fuse = model->ego_fusion();

  QV2X_ASSIGN_OR_RETURN(Int8Artifact artifact, ReadInt8Artifact(artifact_path));
  QV2X_ASSIGN_OR_RETURN(std::unique_ptr<Int8AgentEncoder> q_enc,
                        Int8AgentEncoder::Load(artifact_path));
  QV2X_ASSIGN_OR_RETURN(std::unique_ptr<Int8EgoFusion> q_fuse, Int8EgoFusion::Load(artifact_path));
  if (q_enc->codebook_digest() != CodebookDigestOf(*model)) {
    return absl::FailedPreconditionError(
        "the artifact's codebook differs from the checkpoint's: not quantized from it");
  }

  PtqReport report;
  report.eval_source = eval_source;
  report.threads = at::get_num_threads();
  report.engine = c10::toString(at::globalContext().qEngine());
  for (const auto& [name, t] : StateDict(*model)) report.fp32.bytes += t.nbytes();
  report.fp32.file_bytes = FileBytes(checkpoint_path);
  report.int8.bytes = q_enc->weight_bytes();
  report.int8.file_bytes = FileBytes(artifact_path);
  if (!artifact.report_json.empty()) {
    const nlohmann::json r = nlohmann::json::parse(artifact.report_json, nullptr, false);
    if (r.is_object()) {
      report.options = r.value("options", nlohmann::json::object());
      for (const auto& b : r.value("reconstruction", nlohmann::json::array())) {
        PtqBlockResult br;
        br.block = b.value("block", "");
        br.loss_before = b.value("loss_before", 0.0);
        br.loss_after = b.value("loss_after", 0.0);
        br.learned = b.value("learned", false);
        br.seconds = b.value("seconds", 0.0);
        report.reconstruction.push_back(br);
      }
    }
  }

  const bool codebook = model->has_codebook();
  auto fp_encode = [&](const Pillars& p) -> absl::StatusOr<AgentMessage> {
    QV2X_ASSIGN_OR_RETURN(AgentEncoding e, fp_enc->Encode(p));
    AgentMessage m;
    if (codebook) {
      m.indices = e.indices;
    } else {
      m.features = e.features;
    }
    return m;
  };
  auto q_encode = [&](const Pillars& p) -> absl::StatusOr<AgentMessage> {
    AgentMessage m;
    if (codebook) {
      QV2X_ASSIGN_OR_RETURN(m.indices, q_enc->EncodeIndices(p));
    } else {
      QV2X_ASSIGN_OR_RETURN(m.features, q_enc->EncodeFeatures(p));
    }
    return m;
  };
  auto fp_fusion = [&](const std::vector<AgentMessage>& m) { return fp_fuse->Fuse(m); };
  auto q_fusion = [&](const std::vector<AgentMessage>& m) { return q_fuse->Fuse(m); };

  QV2X_ASSIGN_OR_RETURN(AnchorGrid grid, MakeAnchorGrid(cfg));
  QV2X_ASSIGN_OR_RETURN(std::unique_ptr<FrameSource> source,
                        FrameSource::Open(eval_source, options.max_frames, DatasetOptionsOf(cfg)));
  SampleOptions so;
  so.mode = PillarMode::kTest;
  so.targets = false;
  Timings fp, q;
  size_t agents = 0;
  const size_t warm = std::min<size_t>(std::max(0, options.warmup_frames), source->size());
  for (size_t i = 0; i < source->size(); ++i) {
    QV2X_ASSIGN_OR_RETURN(SceneFrame frame, source->Read(i));
    QV2X_ASSIGN_OR_RETURN(Sample s, BuildSample(frame, cfg, grid, so));
    if (i < warm) {  // warm-up frames, taken again below
      QV2X_RETURN_IF_ERROR(RunFrame(s, cfg, grid, fp_encode, fp_fusion, &fp, false));
      QV2X_RETURN_IF_ERROR(RunFrame(s, cfg, grid, q_encode, q_fusion, &q, false));
    }
    // Alternate which precision goes first, so that neither always meets a warm cache.
    if (i % 2 == 0) {
      QV2X_RETURN_IF_ERROR(RunFrame(s, cfg, grid, fp_encode, fp_fusion, &fp, true));
      QV2X_RETURN_IF_ERROR(RunFrame(s, cfg, grid, q_encode, q_fusion, &q, true));
    } else {
      QV2X_RETURN_IF_ERROR(RunFrame(s, cfg, grid, q_encode, q_fusion, &q, true));
      QV2X_RETURN_IF_ERROR(RunFrame(s, cfg, grid, fp_encode, fp_fusion, &fp, true));
    }
    agents += s.collated.agents.size();
  }
  report.frames = static_cast<int64_t>(source->size());
  report.agents_per_frame =
      source->size() == 0 ? 0 : static_cast<double>(agents) / static_cast<double>(source->size());
  for (auto [t, p] :
       {std::pair<Timings*, PrecisionReport*>{&fp, &report.fp32}, {&q, &report.int8}}) {
    p->encode_latency_p50_s = Median(t->encode);
    p->e2e_latency_p50_s = Median(t->e2e);
    p->fusion_latency_p50_s = Median(t->fusion);
    p->ap = t->acc.Result(ApSortOrder::kGlobal);
  }
  return report;
}

nlohmann::json PtqReportJson(const PtqReport& r) {
  nlohmann::json j;
  j["fp32"] = PrecisionJson(r.fp32);
  j["int8"] = PrecisionJson(r.int8);
  j["options"] = r.options.is_null() ? nlohmann::json::object() : r.options;
  j["reconstruction"] = nlohmann::json::array();
  for (const PtqBlockResult& b : r.reconstruction)
    j["reconstruction"].push_back(PtqBlockResultJson(b));
  j["eval"] = {{"source", r.eval_source},
               {"frames", r.frames},
               {"agents_per_frame", r.agents_per_frame},
               {"engine", r.engine},
               {"threads", r.threads}};
  return j;
}

}  // namespace qv2x::quant
