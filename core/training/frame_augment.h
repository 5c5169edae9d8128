// Training-time augmentation of a multi-agent frame (train_params.augment): a left-right
// mirror, a turn of the ego's view, and other agents left out. Each keeps the frame
// consistent, so the ego-frame ground truth, every agent's points and the poses that warp
// their features into the ego frame all agree afterwards:
// - mirror: the whole world reflected across the x-z plane (y -> -y): every agent's points
//   in its own frame, its pose (y, yaw and roll negate), and the objects;
// - turn by θ: the ego's points rotate by θ about its z axis and its pose turns by -θ, so
//   everything seen from the ego (objects, other agents' points) turns by θ;
// - dropout: other agents removed from the frame (never the ego);
// - sparse messages: other agents send only the cells a drawn CellSelection picks, marked
//   on the collated frame after the others are applied (the model zeroes the rest).
#ifndef QV2X_CORE_TRAINING_FRAME_AUGMENT_H_
#define QV2X_CORE_TRAINING_FRAME_AUGMENT_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "core/config/augment_config.h"
#include "core/data/frame.h"
#include "core/voxel/pillars.h"

namespace qv2x {

struct Augmentation {
  bool mirror = false;
  double turn_rad = 0;                                       // of the ego's view, counter-clockwise
  std::vector<int> dropped_agents;                           // agent ids left out
  std::vector<std::pair<int, CellSelection>> sparse_agents;  // agent id, what it sends
};

// Draws one augmentation from `config` for `frame`, deterministically from `key` (e.g.
// sim::StreamKey(seed, {epoch, frame index})).
Augmentation DrawAugmentation(const AugmentConfig& config, const SceneFrame& frame, uint64_t key);

// Applies it in place (everything but the sparse messages).
void ApplyAugmentation(const Augmentation& a, SceneFrame* frame);

// Marks the sparse agents' selections on the frame collated from the augmented one.
void MarkSparseAgents(const Augmentation& a, CollatedFrame* frame);

}  // namespace qv2x

#endif  // QV2X_CORE_TRAINING_FRAME_AUGMENT_H_
