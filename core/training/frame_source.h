// Where training, validation and inference frames come from: the built-in simulator
// (`sim:<scene.yaml>`) or an OPV2V / V2X-Real folder on disk. Frames are addressed by a
// flat index, so a data order can be shuffled deterministically.
#ifndef QV2X_CORE_TRAINING_FRAME_SOURCE_H_
#define QV2X_CORE_TRAINING_FRAME_SOURCE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/data/frame.h"
#include "core/data/opv2v_reader.h"
#include "core/sim/simulator.h"

namespace qv2x {

// The dataset options a stage config names (dataset_mode, missing_agent).
Opv2vOptions DatasetOptionsOf(const StageConfig& cfg);

class FrameSource {
 public:
  // `spec` is "sim:<scene file>" or a dataset folder. `max_frames` > 0 keeps only that
  // many frames: a dataset its first ones; a scene the same number from every scenario,
  // evenly spaced over the episode.
  // `options`: how a dataset folder is read.
  static absl::StatusOr<std::unique_ptr<FrameSource>> Open(const std::string& spec,
                                                           int max_frames = 0,
                                                           const Opv2vOptions& options = {});

  size_t size() const { return size_; }
  absl::StatusOr<SceneFrame> Read(size_t i) const;
  // "<scenario>/<timestamp>", unique within the source.
  std::string FrameName(size_t i) const;
  const std::string& spec() const { return spec_; }

 private:
  FrameSource() = default;
  // (scenario, frame) of flat index i for a simulated source.
  std::pair<int, int> SimIndex(size_t i) const;

  std::string spec_;
  std::optional<sim::Simulator> sim_;
  std::optional<Opv2vDataset> dataset_;
  int frames_per_scenario_ = 0;
  int frame_stride_ = 1;
  int scenarios_used_ = 0;
  size_t size_ = 0;
};

}  // namespace qv2x

#endif  // QV2X_CORE_TRAINING_FRAME_SOURCE_H_
