// The preset YAML files (configs/<preset>/stage{1,2,3}.yaml) build valid models of the
// expected size and output shapes.
#include <torch/torch.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "core/model/detector.h"
#include "core/model/model_summary.h"
#include "gtest/gtest.h"
#include "tests/unit/model_test_util.h"

namespace qv2x {
namespace {

using testing::MakeFrame;
using Shape = std::vector<int64_t>;

StageConfig Load(const std::string& preset, int stage) {
  auto cfg = LoadStageConfig(absl::StrCat("configs/", preset, "/stage", stage, ".yaml"));
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  return cfg.ok() ? *cfg : StageConfig{};
}

TEST(Presets, EveryStageConfigBuildsItsModelVariant) {
  for (const std::string preset : {"tiny", "cpu", "v2x_real"}) {
    for (int stage = 1; stage <= 3; ++stage) {
      SCOPED_TRACE(absl::StrCat(preset, " stage ", stage));
      const StageConfig cfg = Load(preset, stage);
      auto s = SummarizeModel(cfg);
      ASSERT_TRUE(s.ok()) << s.status();
      bool has_codebook = false;
      for (const auto& m : s->modules) has_codebook |= m.name == "codebook";
      EXPECT_EQ(has_codebook, stage != 1);
    }
  }
}

TEST(Presets, V2xRealIsAbout5Point6MParameters) {
  for (int stage = 1; stage <= 3; ++stage) {
    auto s = SummarizeModel(Load("v2x_real", stage));
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_NEAR(static_cast<double>(s->parameters), 5.6e6, 0.05 * 5.6e6) << "stage " << stage;
    EXPECT_EQ(s->geometry.feature_w, 352);
    EXPECT_EQ(s->geometry.feature_h, 100);
  }
}

TEST(Presets, TinyAndCpuForwardShapes) {
  const std::vector<Pose> poses = {{0, 0, 0, 0, 0, 0}, {6, 1, 0, 0, 20, 0}};
  for (const std::string preset : {"tiny", "cpu"}) {
    SCOPED_TRACE(preset);
    const StageConfig cfg = Load(preset, 3);
    auto g = ComputeBevGeometry(cfg);
    ASSERT_TRUE(g.ok());
    torch::manual_seed(0);
    auto model = MakeDetector(cfg);
    ASSERT_TRUE(model.ok()) << model.status();
    (*model)->eval();
    torch::NoGradGuard no_grad;
    const CollatedFrame f =
        MakeFrame(cfg, poses, static_cast<int>(g->pillar_w * g->pillar_h / 8), 1);
    auto out = RunDetector(*model, {&f});
    ASSERT_TRUE(out.ok()) << out.status();
    const int64_t a = cfg.model.anchor_number, h = g->feature_h, w = g->feature_w;
    EXPECT_EQ(out->cls.sizes(), (Shape{1, a, h, w}));
    EXPECT_EQ(out->reg.sizes(), (Shape{1, 7 * a, h, w}));
    EXPECT_EQ(out->dir.sizes(), (Shape{1, cfg.model.dir_args.num_bins * a, h, w}));
    ASSERT_EQ(out->occupancy.size(), cfg.model.fusion_backbone.layer_nums.size());
    EXPECT_EQ(out->occupancy.back().sizes(), (Shape{2, 1, h / 4, w / 4}));
    auto idx = (*model)->agent_encoder()->Encode(f.agents[0].pillars);
    ASSERT_TRUE(idx.ok());
    EXPECT_EQ(idx->indices.sizes(), (Shape{cfg.model.codebook.seg_num, h, w}));
  }
}

}  // namespace
}  // namespace qv2x
