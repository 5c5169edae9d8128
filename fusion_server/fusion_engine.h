// The ego half of the model as the fusion service runs it: picks the agents of a closed
// frame (the ego, then the nearest within comm_range up to max_cav), rebuilds their
// features from the codebook, warps, fuses, detects; and scores detections against the
// simulated scene's ground truth over a rolling window. LibTorch stays inside the .cc.
#ifndef QV2X_FUSION_SERVER_FUSION_ENGINE_H_
#define QV2X_FUSION_SERVER_FUSION_ENGINE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/codec/index_codec.h"
#include "core/detection/postprocess.h"
#include "core/eval/average_precision.h"
#include "core/sim/scene_clock.h"
#include "core/sim/scene_config.h"
#include "fusion_server/frame_assembler.h"

namespace qv2x::fusion {

struct FusedFrame {
  uint64_t frame_id = 0;
  std::vector<int> agents;  // fused, the ego first
  std::vector<Detection> detections;
  double fuse_seconds = 0;
  bool int8 = false;  // fused by the INT8 ego half
};

class FusionEngine {
 public:
  // max_cav > 0 replaces train_params.max_cav (agents fused per frame, the ego included).
  static absl::StatusOr<std::unique_ptr<FusionEngine>> Create(
      const std::string& config_path, const std::string& checkpoint, const sim::SceneConfig& scene,
      int ap_window_frames, int max_cav = 0, const std::string& int8_artifact = "");
  ~FusionEngine();

  const codec::IndexGrid& grid() const;
  const std::string& codebook_digest() const;
  int64_t feature_channels() const;
  sim::SceneInstant Instant(uint64_t frame_id) const;
  bool has_int8() const;
  // From the next frame on; FailedPrecondition without an INT8 artifact.
  absl::Status SetInt8(bool int8);
  bool int8() const;

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
