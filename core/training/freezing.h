// What each training stage may change (SPEC §6). Stage 2 trains the codebook alone: every
// other parameter is frozen and its modules stay in eval mode, so neither weights nor BN
// statistics can move.
#ifndef QV2X_CORE_TRAINING_FREEZING_H_
#define QV2X_CORE_TRAINING_FREEZING_H_

#include <vector>

#include "core/model/detector.h"

namespace qv2x {

// The parameters the stage's optimiser owns; for stage 2 it also clears requires_grad on
// everything else.
std::vector<torch::Tensor> TrainableParameters(Detector& model, int stage);

// Train mode for the stage: everything for stages 1 and 3, only the codebook for stage 2.
void SetTrainMode(Detector& model, int stage);

}  // namespace qv2x

#endif  // QV2X_CORE_TRAINING_FREEZING_H_
