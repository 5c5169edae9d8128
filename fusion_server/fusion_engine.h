// The ego half of the model as the fusion service runs it: picks the agents of a closed
// frame (the ego, then the nearest within comm_range up to max_cav), rebuilds their
// features from the codebook each message names, warps, fuses, detects; and scores
// detections against the ground truth of the scene it plays (simulated, or a dataset played
// back) over a rolling window.
// A model roll-out (LoadModel) swaps the weights between two frames and keeps the earlier
// codebooks until they are retired, so agents can switch one at a time. LibTorch stays
// inside the .cc.
#ifndef QV2X_FUSION_SERVER_FUSION_ENGINE_H_
#define QV2X_FUSION_SERVER_FUSION_ENGINE_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/codec/index_codec.h"
#include "core/detection/postprocess.h"
#include "core/eval/average_precision.h"
#include "core/sim/scene_clock.h"
#include "core/sim/scene_playback.h"
#include "fusion_server/frame_assembler.h"

namespace qv2x::fusion {

struct FusedFrame {
  uint64_t frame_id = 0;
  std::vector<int> agents;  // fused, the ego first
  std::vector<Detection> detections;
  double fuse_seconds = 0;
  bool int8 = false;  // fused by the INT8 ego half
  // Agents left out because their codebook was retired after their message was accepted.
  std::vector<int> undecodable;
};

// What LoadModel changed.
struct ModelLoad {
  std::string previous_digest, digest;
  uint64_t generation = 0;
};

class FusionEngine {
 public:
  // max_cav > 0 replaces train_params.max_cav (agents fused per frame, the ego included).
  static absl::StatusOr<std::unique_ptr<FusionEngine>> Create(
      const std::string& config_path, const std::string& checkpoint, sim::ScenePlayback playback,
      int ap_window_frames, int max_cav = 0, const std::string& int8_artifact = "");
  ~FusionEngine();

  // The grid never changes (a model with another grid is refused by LoadModel).
  const codec::IndexGrid& grid() const;
  int64_t feature_channels() const;
  sim::SceneInstant Instant(uint64_t frame_id) const;
  const sim::ScenePlayback& playback() const;
  // The current model (they change with LoadModel; each call is a consistent snapshot).
  std::string codebook_digest() const;
  std::string checkpoint() const;
  std::string int8_artifact() const;
  uint64_t model_generation() const;
  bool has_int8() const;
  // Digests whose indices Fuse can decode: the current one and those not yet retired.
  std::set<std::string> held_codebooks() const;
  // From the next frame on; FailedPrecondition without an INT8 artifact.
  absl::Status SetInt8(bool int8);
  bool int8() const;

  // Loads `checkpoint` (same config, same grid) and, if given, its INT8 ego half; from the
  // next frame on they fuse. The previous codebook stays held. Loading happens on the
  // caller's thread while frames keep fusing on the old model. FailedPrecondition when the
  // ego half runs INT8 and `int8_artifact` is empty, or the artifact's codebook is not the
  // checkpoint's.
  absl::StatusOr<ModelLoad> LoadModel(const std::string& checkpoint,
                                      const std::string& int8_artifact);
  // Forgets an earlier codebook: NotFound if not held, FailedPrecondition for the current.
  absl::Status RetireCodebook(const std::string& digest);

  // Runs the model on a frame that has the ego's message.
  absl::StatusOr<FusedFrame> Fuse(const ClosedFrame& frame);
  // Adds the frame to the rolling AP window (ground truth: objects seen by the fused
  // agents, as `qv2x infer` scores) and returns the window's AP.
  absl::StatusOr<EvalResult> Score(const FusedFrame& frame);

 private:
  struct State;
  explicit FusionEngine(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace qv2x::fusion

#endif  // QV2X_FUSION_SERVER_FUSION_ENGINE_H_
