// One training / evaluation sample from a SceneFrame: the collated agents, the ground truth
// in the ego frame, anchor targets and the per-agent pyramid occupancy labels.
#ifndef QV2X_CORE_TRAINING_SAMPLE_BUILDER_H_
#define QV2X_CORE_TRAINING_SAMPLE_BUILDER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/data/frame.h"
#include "core/detection/anchors.h"
#include "core/detection/target_assigner.h"
#include "core/voxel/pillars.h"

namespace qv2x {

struct Sample {
  CollatedFrame collated;
  std::vector<LabeledBox> gt;  // ego frame, inside postprocess.gt_range
  FrameTargets targets;        // set when targets were asked for
  // occupancy[agent][level]: [1, H_l, W_l], in the agent's own frame (stage 1 only).
  std::vector<std::vector<at::Tensor>> occupancy;
};

// The evaluation ground truth of a frame, in the ego frame: objects inside gt_range that at
// least one of `agent_ids` saw (when the frame carries visibility, as simulated frames do;
// dataset frames list annotated objects, which all count), without the ego's own car
// (object id == ego id). The same set serves the
// cooperative and the ego-only evaluation, so that the two are comparable.
std::vector<LabeledBox> EgoGroundTruth(const SceneFrame& frame, const std::vector<int>& agent_ids,
                                       const StageConfig& cfg);
// The same objects with their ids and visibility kept, boxes in the ego frame (diagnosis).
std::vector<GtObject> EgoGroundTruthObjects(const SceneFrame& frame,
                                            const std::vector<int>& agent_ids,
                                            const StageConfig& cfg);

struct SampleOptions {
  PillarMode mode = PillarMode::kTrain;
  bool targets = true;
  bool occupancy = false;  // stage-1 pyramid labels
};

absl::StatusOr<Sample> BuildSample(const SceneFrame& frame, const StageConfig& cfg,
                                   const AnchorGrid& grid, const SampleOptions& options);

}  // namespace qv2x

#endif  // QV2X_CORE_TRAINING_SAMPLE_BUILDER_H_
