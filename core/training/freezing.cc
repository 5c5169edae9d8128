#include "core/training/freezing.h"

namespace qv2x {

std::vector<torch::Tensor> TrainableParameters(Detector& model, int stage) {
  if (stage != 2) return model->parameters();
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  std::vector<torch::Tensor> out = model->codebook()->parameters();
  for (auto& p : out) p.set_requires_grad(true);
  return out;
}

void SetTrainMode(Detector& model, int stage) {
  if (stage == 2) {
    model->eval();
    model->codebook()->train();
  } else {
    model->train();
  }
}

}  // namespace qv2x
