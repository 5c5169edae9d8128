#include "fusion_server/fusion_engine.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>

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

namespace {

// One loaded ego half: weights, anchors and the optional INT8 twin. Immutable once built;
// a roll-out replaces the whole slot between two frames.
struct ModelSlot {
  RuntimeModel model;
  AnchorGrid anchors;
  std::unique_ptr<quant::Int8EgoFusion> int8;  // null: FP32 only
  std::string int8_artifact;
};

absl::StatusOr<std::shared_ptr<ModelSlot>> LoadSlot(const std::string& config_path,
                                                    const std::string& checkpoint,
                                                    const std::string& int8_artifact, int max_cav) {
  auto slot = std::make_shared<ModelSlot>();
  QV2X_ASSIGN_OR_RETURN(slot->model, LoadRuntimeModel(config_path, checkpoint));
  QV2X_ASSIGN_OR_RETURN(slot->anchors, MakeAnchorGrid(slot->model.cfg));
  if (max_cav > 0) slot->model.cfg.train_params.max_cav = max_cav;
  if (!int8_artifact.empty()) {
    QV2X_ASSIGN_OR_RETURN(slot->int8, quant::Int8EgoFusion::Load(int8_artifact));
    if (slot->int8->codebook_digest() != slot->model.codebook_digest) {
      return absl::FailedPreconditionError(absl::StrCat(
          "INT8 artifact ", int8_artifact, " (config ", slot->int8->config().name,
          ") holds codebook ", slot->int8->codebook_digest(), ", the FP32 model (config ",
          slot->model.cfg.name, ") ", slot->model.codebook_digest));
    }
    slot->int8_artifact = int8_artifact;
  }
  return slot;
}

codec::IndexGrid GridOf(const StageConfig& cfg) {
  int stride = 1;
  for (int s : cfg.model.backbone.layer_strides) stride *= s;
  const CodebookConfig& cb = cfg.model.codebook;
  return {cb.residual_levels * cb.seg_num, cfg.preprocess.grid_h() / stride,
          cfg.preprocess.grid_w() / stride, cb.dict_size};
}

}  // namespace

struct FusionEngine::State {
  std::string config_path;
  int max_cav = 0;
  codec::IndexGrid grid;
  int64_t channels = 0;
  std::unique_ptr<sim::ScenePlayback> playback;
  ApAccumulator ap;
  std::atomic<bool> use_int8{false};
  std::mutex load_mu;  // one LoadModel at a time

  mutable std::mutex mu;  // the three below
  std::shared_ptr<const ModelSlot> slot;
  // digest → codebook, the current one included. Replaced, never changed in place, so a
  // frame holds it by pointer while a roll-out goes on.
  std::shared_ptr<const std::map<std::string, Codebook>> held;
  uint64_t generation = 0;

  explicit State(int window) : ap(DefaultIouThresholds(), window) {}
  std::shared_ptr<const ModelSlot> Slot() const {
    std::lock_guard<std::mutex> lock(mu);
    return slot;
  }
};

FusionEngine::FusionEngine(std::unique_ptr<State> state) : s_(std::move(state)) {}
FusionEngine::~FusionEngine() = default;

const codec::IndexGrid& FusionEngine::grid() const { return s_->grid; }
int64_t FusionEngine::feature_channels() const { return s_->channels; }
std::string FusionEngine::codebook_digest() const { return s_->Slot()->model.codebook_digest; }
std::string FusionEngine::checkpoint() const { return s_->Slot()->model.checkpoint; }
std::string FusionEngine::int8_artifact() const { return s_->Slot()->int8_artifact; }
bool FusionEngine::has_int8() const { return s_->Slot()->int8 != nullptr; }
bool FusionEngine::int8() const { return s_->use_int8.load(); }
uint64_t FusionEngine::model_generation() const {
  std::lock_guard<std::mutex> lock(s_->mu);
  return s_->generation;
}
std::set<std::string> FusionEngine::held_codebooks() const {
  std::lock_guard<std::mutex> lock(s_->mu);
  std::set<std::string> out;
  for (const auto& [digest, cb] : *s_->held) out.insert(digest);
  return out;
}

absl::Status FusionEngine::SetInt8(bool int8) {
  std::lock_guard<std::mutex> lock(s_->mu);
  if (int8 && !s_->slot->int8) {
    return absl::FailedPreconditionError("no INT8 ego half loaded (--int8_artifact)");
  }
  s_->use_int8 = int8;
  return absl::OkStatus();
}

sim::SceneInstant FusionEngine::Instant(uint64_t frame_id) const {
  return s_->playback->Instant(frame_id);
}

const sim::ScenePlayback& FusionEngine::playback() const { return *s_->playback; }

absl::StatusOr<std::unique_ptr<FusionEngine>> FusionEngine::Create(
    const std::string& config_path, const std::string& checkpoint, sim::ScenePlayback playback,
    int ap_window_frames, int max_cav, const std::string& int8_artifact) {
  QV2X_ASSIGN_OR_RETURN(std::shared_ptr<ModelSlot> slot,
                        LoadSlot(config_path, checkpoint, int8_artifact, max_cav));
  auto state = std::make_unique<State>(ap_window_frames);
  state->config_path = config_path;
  state->max_cav = max_cav;
  state->grid = GridOf(slot->model.cfg);
  state->channels = slot->model.cfg.model.codebook.channel;
  state->playback = std::make_unique<sim::ScenePlayback>(std::move(playback));
  state->held =
      std::make_shared<const std::map<std::string, Codebook>>(std::map<std::string, Codebook>{
          {slot->model.codebook_digest, slot->model.detector->ego_fusion()->codebook}});
  state->slot = std::move(slot);
  return std::unique_ptr<FusionEngine>(new FusionEngine(std::move(state)));
}

absl::StatusOr<ModelLoad> FusionEngine::LoadModel(const std::string& checkpoint,
                                                  const std::string& int8_artifact) {
  if (checkpoint.empty()) return absl::InvalidArgumentError("a checkpoint is required");
  std::lock_guard<std::mutex> load(s_->load_mu);
  QV2X_ASSIGN_OR_RETURN(std::shared_ptr<ModelSlot> slot,
                        LoadSlot(s_->config_path, checkpoint, int8_artifact, s_->max_cav));
  const codec::IndexGrid g = GridOf(slot->model.cfg);
  if (g.levels != s_->grid.levels || g.height != s_->grid.height || g.width != s_->grid.width ||
      g.dict_size != s_->grid.dict_size) {
    return absl::FailedPreconditionError(
        absl::StrCat(checkpoint, ": index grid ", g.levels, "x", g.height, "x", g.width, " (",
                     g.dict_size, " codes) differs from the running model's ", s_->grid.levels, "x",
                     s_->grid.height, "x", s_->grid.width, " (", s_->grid.dict_size, ")"));
  }
  std::lock_guard<std::mutex> lock(s_->mu);
  if (s_->use_int8 && !slot->int8) {
    return absl::FailedPreconditionError(
        "the ego half runs INT8: give the new model's INT8 artifact too, or switch to FP32 first");
  }
  ModelLoad out;
  out.previous_digest = s_->slot->model.codebook_digest;
  out.digest = slot->model.codebook_digest;
  auto held = std::make_shared<std::map<std::string, Codebook>>(*s_->held);
  held->insert_or_assign(out.digest, slot->model.detector->ego_fusion()->codebook);
  s_->held = std::move(held);
  s_->slot = std::move(slot);
  out.generation = ++s_->generation;
  return out;
}

absl::Status FusionEngine::RetireCodebook(const std::string& digest) {
  std::lock_guard<std::mutex> lock(s_->mu);
  if (s_->held->count(digest) == 0) {
    return absl::NotFoundError(absl::StrCat("codebook ", digest, " is not held"));
  }
  if (digest == s_->slot->model.codebook_digest) {
    return absl::FailedPreconditionError(
        absl::StrCat("codebook ", digest, " belongs to the model in use"));
  }
  auto held = std::make_shared<std::map<std::string, Codebook>>(*s_->held);
  held->erase(digest);
  s_->held = std::move(held);
  return absl::OkStatus();
}

absl::StatusOr<FusedFrame> FusionEngine::Fuse(const ClosedFrame& frame) {
  if (!frame.has_ego) return absl::FailedPreconditionError("frame has no ego message");
  std::shared_ptr<const ModelSlot> slot;
  std::shared_ptr<const std::map<std::string, Codebook>> held;
  {
    std::lock_guard<std::mutex> lock(s_->mu);
    slot = s_->slot;
    held = s_->held;
  }
  const StageConfig& cfg = slot->model.cfg;
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
  out.int8 = s_->use_int8.load() && slot->int8 != nullptr;
  QV2X_ASSIGN_OR_RETURN(
      HeadOutput heads, TorchCall("fusion", [&]() -> absl::StatusOr<HeadOutput> {
        torch::NoGradGuard no_grad;
        std::vector<AgentMessage> agents;
        for (size_t k : picked) {
          const ReceivedMessage& m = frame.messages[k];
          AgentMessage a;
          torch::Tensor indices = torch::from_blob(const_cast<int32_t*>(m.indices.data()),
                                                   {g.levels, g.height, g.width}, torch::kInt32)
                                      .to(torch::kLong);
          if (m.codebook_digest == slot->model.codebook_digest) {
            a.indices = std::move(indices);
          } else if (auto it = held->find(m.codebook_digest); it != held->end()) {
            // An agent still on an earlier model: its own codebook rebuilds its features.
            Codebook codebook = it->second;  // a handle: Decode is not const
            QV2X_ASSIGN_OR_RETURN(torch::Tensor decoded, codebook->Decode(indices.unsqueeze(0)));
            a.features = decoded.squeeze(0);
          } else if (k == 0) {
            return absl::FailedPreconditionError(
                absl::StrCat("the ego's codebook ", m.codebook_digest, " was retired"));
          } else {
            out.undecodable.push_back(m.agent_id);
            continue;
          }
          a.warp = NormalizedAffine(RelativeTransform(ego, m.lidar_pose), cfg.preprocess.grid_w(),
                                    cfg.preprocess.grid_h(), cfg.preprocess.voxel_size[0]);
          agents.push_back(std::move(a));
          out.agents.push_back(m.agent_id);
        }
        if (out.int8) return slot->int8->Fuse(agents);
        return slot->model.detector->ego_fusion()->Fuse(agents);
      }));
  QV2X_ASSIGN_OR_RETURN(out.detections, PostProcess(slot->anchors, heads.cls, heads.reg, heads.dir,
                                                    cfg.postprocess, cfg.model.dir_args));
  out.fuse_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

absl::StatusOr<EvalResult> FusionEngine::Score(const FusedFrame& frame) {
  QV2X_ASSIGN_OR_RETURN(SceneFrame scene, s_->playback->Labels(frame.frame_id));
  // The labels name agents as the source does (a dataset's own ids).
  std::vector<int> agents;
  for (int id : frame.agents) {
    if (std::optional<int> source = s_->playback->SourceId(frame.frame_id, id)) {
      agents.push_back(*source);
    }
  }
  const std::vector<LabeledBox> gt = EgoGroundTruth(scene, agents, s_->Slot()->model.cfg);
  s_->ap.AddFrame(ToEvalBoxes(frame.detections), ToEvalBoxes(gt));
  return s_->ap.Result(ApSortOrder::kGlobal);
}

}  // namespace qv2x::fusion
