// What the agent and fusion services play: the scene's simulator, or a dataset folder
// (OPV2V / V2X-Real layout, core/data/opv2v_reader.h) played back at the scene's rate. With
// a dataset, frame id t is the dataset's frame t (wrapping), and the scene's k-th agent (the
// ego first, then scene-file order) plays the k-th agent of each scenario (the ego first, in
// the dataset mode's order): scenarios name their agents differently (OPV2V's are CARLA
// actor ids), the services keep the scene's ids on the wire.
#ifndef QV2X_CORE_SIM_SCENE_PLAYBACK_H_
#define QV2X_CORE_SIM_SCENE_PLAYBACK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/frame.h"
#include "core/data/opv2v_reader.h"
#include "core/sim/scene_clock.h"
#include "core/sim/scene_config.h"
#include "core/sim/simulator.h"

namespace qv2x::sim {

struct DatasetPlayback {
  std::string path;  // empty: simulate
  Opv2vOptions options;
};

class ScenePlayback {
 public:
  static absl::StatusOr<ScenePlayback> Create(const SceneConfig& scene,
                                              const DatasetPlayback& dataset = {});

  const SceneConfig& scene() const { return scene_; }
  bool is_dataset() const { return dataset_.has_value(); }
  // "dataset DIR (N frames, S scenarios)" or "simulated scene NAME".
  std::string Describe() const;

  SceneInstant Instant(uint64_t frame_id) const;
  // The sweep scene agent `agent_id` sends at a frame; nullopt when the dataset has none for
  // it then (fewer agents in that scenario, or no record under missing_agent: skip).
  absl::StatusOr<std::optional<AgentFrame>> Sweep(uint64_t frame_id, int agent_id) const;
  // Whether scene agent `agent_id` has a record at a frame (always, simulated). From a
  // table made at Create (file names only), so fusion may ask it per frame and agent.
  bool Plays(uint64_t frame_id, int agent_id) const;
  // The frame's ground truth and poses (no sweeps from a dataset; a simulator needs every
  // sweep for visibility), agents and visibility under the source's own ids.
  absl::StatusOr<SceneFrame> Labels(uint64_t frame_id) const;
  // The source's id of scene agent `agent_id` at a frame (itself, simulated); nullopt when
  // the scenario has no agent in its place.
  std::optional<int> SourceId(uint64_t frame_id, int agent_id) const;

 private:
  ScenePlayback(SceneConfig scene, std::optional<Simulator> sim,
                std::optional<Opv2vDataset> dataset);
  size_t DatasetFrame(uint64_t frame_id) const;

  SceneConfig scene_;
  std::optional<Simulator> sim_;
  std::optional<Opv2vDataset> dataset_;
  std::vector<int> scene_order_;          // scene agent ids, the ego first
  std::vector<SceneInstant> instants_;    // per dataset frame
  std::vector<std::vector<bool>> plays_;  // [dataset frame][scene order slot]
};

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_SCENE_PLAYBACK_H_
