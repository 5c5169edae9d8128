#include "core/sim/scene_playback.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace qv2x::sim {

ScenePlayback::ScenePlayback(SceneConfig scene, std::optional<Simulator> sim,
                             std::optional<Opv2vDataset> dataset)
    : scene_(std::move(scene)), sim_(std::move(sim)), dataset_(std::move(dataset)) {
  scene_order_.push_back(scene_.ego_id);
  for (const AgentConfig& a : scene_.agents) {
    if (a.id != scene_.ego_id) scene_order_.push_back(a.id);
  }
  if (!dataset_) return;
  const auto& frames = dataset_->frames();
  for (size_t i = 0; i < frames.size(); ++i) {
    const bool same = i > 0 && frames[i - 1].scenario == frames[i].scenario;
    instants_.push_back({frames[i].scenario, same ? instants_.back().index + 1 : 0});
    const std::vector<int>& ids = dataset_->agent_ids(frames[i].scenario);
    std::vector<bool> row(scene_order_.size(), false);
    for (size_t k = 0; k < row.size() && k < ids.size(); ++k)
      row[k] = dataset_->HasRecord(i, ids[k]);
    plays_.push_back(std::move(row));
  }
}

absl::StatusOr<ScenePlayback> ScenePlayback::Create(const SceneConfig& scene,
                                                    const DatasetPlayback& dataset) {
  if (dataset.path.empty()) {
    QV2X_ASSIGN_OR_RETURN(Simulator sim, Simulator::Create(scene));
    return ScenePlayback(scene, std::move(sim), std::nullopt);
  }
  QV2X_ASSIGN_OR_RETURN(Opv2vDataset ds, Opv2vDataset::Open(dataset.path, dataset.options));
  return ScenePlayback(scene, std::nullopt, std::move(ds));
}

std::string ScenePlayback::Describe() const {
  if (!dataset_) return absl::StrCat("simulated scene ", scene_.name);
  return absl::StrCat("dataset ", dataset_->root(), " (", dataset_->frames().size(), " frames, ",
                      dataset_->scenarios().size(), " scenarios, mode ",
                      DatasetModeName(dataset_->options().mode), ")");
}

size_t ScenePlayback::DatasetFrame(uint64_t frame_id) const {
  return static_cast<size_t>(frame_id % dataset_->frames().size());
}

SceneInstant ScenePlayback::Instant(uint64_t frame_id) const {
  if (!dataset_) return InstantOf(scene_, frame_id);
  return instants_[DatasetFrame(frame_id)];
}

std::optional<int> ScenePlayback::SourceId(uint64_t frame_id, int agent_id) const {
  if (!dataset_) return agent_id;
  const auto k = std::find(scene_order_.begin(), scene_order_.end(), agent_id);
  if (k == scene_order_.end()) return std::nullopt;
  const std::vector<int>& ids = dataset_->agent_ids(Instant(frame_id).scenario);
  const size_t slot = static_cast<size_t>(k - scene_order_.begin());
  if (slot >= ids.size()) return std::nullopt;
  return ids[slot];
}

absl::StatusOr<std::optional<AgentFrame>> ScenePlayback::Sweep(uint64_t frame_id,
                                                               int agent_id) const {
  if (!dataset_) {
    const SceneInstant at = Instant(frame_id);
    QV2X_ASSIGN_OR_RETURN(AgentFrame a, sim_->SimulateAgent(at.scenario, at.index, agent_id));
    return a;
  }
  const std::optional<int> source = SourceId(frame_id, agent_id);
  if (!source) return std::nullopt;
  QV2X_ASSIGN_OR_RETURN(std::optional<AgentFrame> a,
                        dataset_->ReadAgent(DatasetFrame(frame_id), *source));
  if (a) a->agent_id = agent_id;  // the scene's id on the wire
  return a;
}

bool ScenePlayback::Plays(uint64_t frame_id, int agent_id) const {
  if (!dataset_) return true;
  const auto k = std::find(scene_order_.begin(), scene_order_.end(), agent_id);
  return k != scene_order_.end() && plays_[DatasetFrame(frame_id)][k - scene_order_.begin()];
}

absl::StatusOr<SceneFrame> ScenePlayback::Labels(uint64_t frame_id) const {
  if (!dataset_) {
    const SceneInstant at = Instant(frame_id);
    return sim_->Frame(at.scenario, at.index);
  }
  return dataset_->ReadLabels(DatasetFrame(frame_id));
}

}  // namespace qv2x::sim
