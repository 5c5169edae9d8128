// Multistep learning-rate schedule (SPEC §6): lr = base · gamma^(milestones passed).
#ifndef QV2X_CORE_TRAINING_LR_SCHEDULE_H_
#define QV2X_CORE_TRAINING_LR_SCHEDULE_H_

#include <vector>

namespace qv2x {

// `epoch` is 0-based, milestones are epoch numbers as in PyTorch's MultiStepLR stepped once
// per epoch: at epoch e the rate has decayed once for every milestone m <= e.
double MultiStepLr(double base_lr, double gamma, const std::vector<int>& milestones, int epoch);

}  // namespace qv2x

#endif  // QV2X_CORE_TRAINING_LR_SCHEDULE_H_
