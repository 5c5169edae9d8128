#include "core/training/frame_source.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "core/sim/scene_config.h"

namespace qv2x {

Opv2vOptions DatasetOptionsOf(const StageConfig& cfg) {
  // The stage config checked both names when it was parsed.
  Opv2vOptions o;
  o.mode = ParseDatasetMode(cfg.dataset_mode).value_or(DatasetMode::kVc);
  o.missing = ParseMissingAgent(cfg.missing_agent).value_or(MissingAgent::kSkip);
  return o;
}

absl::StatusOr<std::unique_ptr<FrameSource>> FrameSource::Open(const std::string& spec,
                                                               int max_frames,
                                                               const Opv2vOptions& options) {
  std::unique_ptr<FrameSource> src(new FrameSource());
  src->spec_ = spec;
  if (spec.rfind("sim:", 0) == 0) {
    QV2X_ASSIGN_OR_RETURN(sim::SceneConfig scene, sim::LoadSceneConfig(spec.substr(4)));
    QV2X_ASSIGN_OR_RETURN(sim::Simulator simulator, sim::Simulator::Create(scene));
    src->frames_per_scenario_ = scene.frames_per_scenario;
    src->scenarios_used_ = simulator.num_scenarios();
    src->size_ = static_cast<size_t>(scene.frames_per_scenario) * simulator.num_scenarios();
    src->sim_.emplace(std::move(simulator));
  } else {
    QV2X_ASSIGN_OR_RETURN(Opv2vDataset ds, Opv2vDataset::Open(spec, options));
    src->size_ = ds.frames().size();
    src->dataset_.emplace(std::move(ds));
  }
  if (src->size_ == 0) return absl::InvalidArgumentError(absl::StrCat(spec, ": no frames"));
  if (max_frames > 0 && static_cast<size_t>(max_frames) < src->size_) {
    src->size_ = static_cast<size_t>(max_frames);
    if (src->sim_) {
      // Spread the kept frames over each episode rather than taking its first seconds.
      const int per_scenario = (max_frames + src->scenarios_used_ - 1) / src->scenarios_used_;
      src->frame_stride_ = std::max(1, src->frames_per_scenario_ / per_scenario);
    }
  }
  return src;
}

std::pair<int, int> FrameSource::SimIndex(size_t i) const {
  // Interleave scenarios so that a truncated source still spans all of them.
  const int scenario = static_cast<int>(i % scenarios_used_);
  const int frame = static_cast<int>(i / scenarios_used_) * frame_stride_;
  return {scenario, frame};
}

absl::StatusOr<SceneFrame> FrameSource::Read(size_t i) const {
  if (i >= size_) return absl::OutOfRangeError(absl::StrCat("frame ", i, " of ", size_));
  if (sim_) {
    auto [scenario, frame] = SimIndex(i);
    return sim_->Frame(scenario, frame);
  }
  return dataset_->ReadFrame(i);
}

std::string FrameSource::FrameName(size_t i) const {
  if (sim_) {
    auto [scenario, frame] = SimIndex(i);
    return absl::StrFormat("%s/%06d", sim_->ScenarioName(scenario), frame);
  }
  const auto& ref = dataset_->frames()[i];
  return absl::StrCat(dataset_->scenarios()[ref.scenario], "/", ref.timestamp);
}

}  // namespace qv2x
