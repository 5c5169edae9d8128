#include "fusion_server/fusion_engine.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/detection/anchors.h"
#include "core/model/runtime_model.h"
#include "core/model/torch_status.h"
#include "core/quant/int8_model.h"
#include "core/sim/scene_clock.h"
#include "core/sim/simulator.h"
#include "core/training/evaluator.h"
#include "core/training/sample_builder.h"

namespace qv2x::fusion {

struct FusionEngine::State {
  RuntimeModel model;
  AnchorGrid anchors;
  codec::IndexGrid grid;
  int64_t channels = 0;
  std::unique_ptr<sim::Simulator> sim;
  ApAccumulator ap;
  std::unique_ptr<quant::Int8EgoFusion> int8;  // null: FP32 only
  std::atomic<bool> use_int8{false};

  State(RuntimeModel m, AnchorGrid a, int window)
      : model(std::move(m)), anchors(std::move(a)), ap(DefaultIouThresholds(), window) {}
};

FusionEngine::FusionEngine(std::unique_ptr<State> state) : s_(std::move(state)) {}
FusionEngine::~FusionEngine() = default;

const codec::IndexGrid& FusionEngine::grid() const { return s_->grid; }
const std::string& FusionEngine::codebook_digest() const { return s_->model.codebook_digest; }
int64_t FusionEngine::feature_channels() const { return s_->channels; }
bool FusionEngine::has_int8() const { return s_->int8 != nullptr; }
bool FusionEngine::int8() const { return s_->use_int8.load(); }
absl::Status FusionEngine::SetInt8(bool int8) {
  if (int8 && !s_->int8) {
    return absl::FailedPreconditionError("no INT8 ego half loaded (--int8_artifact)");
  }
  s_->use_int8 = int8;
  return absl::OkStatus();
}

sim::SceneInstant FusionEngine::Instant(uint64_t frame_id) const {
  return sim::InstantOf(s_->sim->config(), frame_id);
}

absl::StatusOr<std::unique_ptr<FusionEngine>> FusionEngine::Create(
    const std::string& config_path, const std::string& checkpoint, const sim::SceneConfig& scene,
    int ap_window_frames, int max_cav, const std::string& int8_artifact) {
  QV2X_ASSIGN_OR_RETURN(RuntimeModel model, LoadRuntimeModel(config_path, checkpoint));
  QV2X_ASSIGN_OR_RETURN(AnchorGrid anchors, MakeAnchorGrid(model.cfg));
  QV2X_ASSIGN_OR_RETURN(sim::Simulator simulator, sim::Simulator::Create(scene));
  auto state = std::make_unique<State>(std::move(model), std::move(anchors), ap_window_frames);
  if (max_cav > 0) state->model.cfg.train_params.max_cav = max_cav;
  const StageConfig& cfg = state->model.cfg;
  int stride = 1;
  for (int s : cfg.model.backbone.layer_strides) stride *= s;
  const CodebookConfig& cb = cfg.model.codebook;
  state->grid = {cb.residual_levels * cb.seg_num, cfg.preprocess.grid_h() / stride,
                 cfg.preprocess.grid_w() / stride, cb.dict_size};
  state->channels = cb.channel;
  state->sim = std::make_unique<sim::Simulator>(std::move(simulator));
  if (!int8_artifact.empty()) {
    QV2X_ASSIGN_OR_RETURN(state->int8, quant::Int8EgoFusion::Load(int8_artifact));
    if (state->int8->codebook_digest() != state->model.codebook_digest) {
      return absl::FailedPreconditionError(absl::StrCat(
          "INT8 artifact ", int8_artifact, " holds codebook ", state->int8->codebook_digest(),
          ", the FP32 model ", state->model.codebook_digest));
    }
  }
  return std::unique_ptr<FusionEngine>(new FusionEngine(std::move(state)));
}

absl::StatusOr<FusedFrame> FusionEngine::Fuse(const ClosedFrame& frame) {
  if (!frame.has_ego) return absl::FailedPreconditionError("frame has no ego message");
  const StageConfig& cfg = s_->model.cfg;
  const auto t0 = std::chrono::steady_clock::now();
  // The ego, then the others within comm_range, nearest first, up to max_cav: the same
  // choice CollateFrame makes for training and `qv2x infer`.
  const Pose& ego = frame.messages.front().lidar_pose;
  std::vector<std::pair<double, size_t>> others;
  for (size_t i = 1; i < frame.messages.size(); ++i) {
    const Pose& p = frame.messages[i].lidar_pose;
    const double d = std::hypot(p.x - ego.x, p.y - ego.y);
    if (d <= cfg.comm_range) others.emplace_back(d, i);
  }
  std::stable_sort(others.begin(), others.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<size_t> picked{0};
  for (const auto& [d, i] : others) {
    if (static_cast<int>(picked.size()) == cfg.train_params.max_cav) break;
    picked.push_back(i);
  }
  const codec::IndexGrid& g = s_->grid;
  FusedFrame out;
  out.frame_id = frame.frame_id;
  out.int8 = s_->use_int8.load();
  QV2X_ASSIGN_OR_RETURN(
      HeadOutput heads, TorchCall("fusion", [&]() -> absl::StatusOr<HeadOutput> {
        torch::NoGradGuard no_grad;
        std::vector<AgentMessage> agents;
        for (size_t k : picked) {
          const ReceivedMessage& m = frame.messages[k];
          AgentMessage a;
          a.indices = torch::from_blob(const_cast<int32_t*>(m.indices.data()),
                                       {g.levels, g.height, g.width}, torch::kInt32)
                          .to(torch::kLong);
          a.warp = NormalizedAffine(RelativeTransform(ego, m.lidar_pose), cfg.preprocess.grid_w(),
                                    cfg.preprocess.grid_h(), cfg.preprocess.voxel_size[0]);
          agents.push_back(std::move(a));
          out.agents.push_back(m.agent_id);
        }
        if (out.int8) return s_->int8->Fuse(agents);
        return s_->model.detector->ego_fusion()->Fuse(agents);
      }));
  QV2X_ASSIGN_OR_RETURN(out.detections, PostProcess(s_->anchors, heads.cls, heads.reg, heads.dir,
                                                    cfg.postprocess, cfg.model.dir_args));
  out.fuse_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

absl::StatusOr<EvalResult> FusionEngine::Score(const FusedFrame& frame) {
  const sim::SceneInstant at = sim::InstantOf(s_->sim->config(), frame.frame_id);
  QV2X_ASSIGN_OR_RETURN(SceneFrame scene, s_->sim->Frame(at.scenario, at.index));
  const std::vector<LabeledBox> gt = EgoGroundTruth(scene, frame.agents, s_->model.cfg);
  s_->ap.AddFrame(ToEvalBoxes(frame.detections), ToEvalBoxes(gt));
  return s_->ap.Result(ApSortOrder::kGlobal);
}

}  // namespace qv2x::fusion
