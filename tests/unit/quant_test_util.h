// Shared fixtures of the quant tests: the tiny stage-3 preset, a randomly initialised
// detector with non-trivial BatchNorm statistics, and simulated frames of the tiny scene.
#ifndef QV2X_TESTS_UNIT_QUANT_TEST_UTIL_H_
#define QV2X_TESTS_UNIT_QUANT_TEST_UTIL_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/detection/anchors.h"
#include "core/model/detector.h"
#include "core/training/frame_source.h"
#include "core/training/sample_builder.h"
#include "gtest/gtest.h"

namespace qv2x::testing {

inline StageConfig TinyStage3() {
  auto cfg = LoadStageConfig("configs/tiny/stage3.yaml");
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  return *cfg;
}

// BatchNorm statistics and affine parameters away from their (0, 1) init, so that folding
// is exercised; the codebook moves to the scale of the features.
inline void RandomizeBatchNorm(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_buffers()) {
    if (absl::EndsWith(item.key(), "running_var")) item.value().uniform_(0.5, 2.0);
    if (absl::EndsWith(item.key(), "running_mean")) item.value().normal_(0, 0.2);
  }
  for (auto& item : model.named_modules()) {
    if (auto* bn = item.value()->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.normal_(0, 0.2);
    } else if (auto* bn1 = item.value()->as<torch::nn::BatchNorm1dImpl>()) {
      bn1->weight.uniform_(0.5, 1.5);
      bn1->bias.normal_(0, 0.2);
    }
  }
}

inline Detector TinyDetector(const StageConfig& cfg, int seed) {
  torch::manual_seed(seed);
  auto model = MakeDetector(cfg);
  EXPECT_TRUE(model.ok()) << model.status();
  RandomizeBatchNorm(**model);
  (*model)->eval();
  return *model;
}

// The first `n` frames of the tiny scene, collated for inference.
inline std::vector<Sample> TinyFrames(const StageConfig& cfg, int n) {
  auto source = FrameSource::Open("sim:configs/scenes/tiny.yaml", n);
  EXPECT_TRUE(source.ok()) << source.status();
  auto grid = MakeAnchorGrid(cfg);
  EXPECT_TRUE(grid.ok()) << grid.status();
  SampleOptions so;
  so.mode = PillarMode::kTest;
  so.targets = false;
  std::vector<Sample> out;
  for (size_t i = 0; i < (*source)->size() && static_cast<int>(out.size()) < n; ++i) {
    auto frame = (*source)->Read(i);
    EXPECT_TRUE(frame.ok()) << frame.status();
    auto s = BuildSample(*frame, cfg, *grid, so);
    EXPECT_TRUE(s.ok()) << s.status();
    out.push_back(std::move(*s));
  }
  return out;
}

inline std::vector<const CollatedFrame*> Collated(const std::vector<Sample>& samples) {
  std::vector<const CollatedFrame*> out;
  for (const Sample& s : samples) out.push_back(&s.collated);
  return out;
}

}  // namespace qv2x::testing

#endif  // QV2X_TESTS_UNIT_QUANT_TEST_UTIL_H_
