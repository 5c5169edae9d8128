#include "core/training/lr_schedule.h"

#include <cmath>

namespace qv2x {

double MultiStepLr(double base_lr, double gamma, const std::vector<int>& milestones, int epoch) {
  int passed = 0;
  for (int m : milestones) passed += epoch >= m ? 1 : 0;
  return base_lr * std::pow(gamma, passed);
}

}  // namespace qv2x
