// The whole detector: output shapes per preset, ego-only, the agent/ego split against the
// joint forward, and gradients in training mode.
#include <torch/torch.h>

#include "core/model/detector.h"
#include "gtest/gtest.h"
#include "tests/unit/model_test_util.h"

namespace qv2x {
namespace {

using testing::CpuConfig;
using testing::MakeFrame;
using testing::TinyConfig;

using Shape = std::vector<int64_t>;

const std::vector<Pose> kFourAgents = {
    {0, 0, 0, 0, 0, 0}, {8, 2, 0, 0, 30, 0}, {-5, -1, 0, 0, 180, 0}, {3, -3, 0, 0, -90, 0}};

// What the ego service runs on `messages` equals the joint eval forward of `f`; returns
// the joint output (empty heads when a forward failed, with the failure recorded).
DetectorOutput ExpectFuseEqualsJoint(Detector& model, const CollatedFrame& f,
                                     const std::vector<AgentMessage>& messages) {
  auto split = model->ego_fusion()->Fuse(messages);
  torch::NoGradGuard g;
  auto joint = RunDetector(model, {&f});
  EXPECT_TRUE(split.ok()) << split.status();
  EXPECT_TRUE(joint.ok()) << joint.status();
  if (!split.ok() || !joint.ok()) return {};
  EXPECT_TRUE(torch::allclose(split->cls, joint->cls, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(split->reg, joint->reg, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(split->dir, joint->dir, 1e-4, 1e-5));
  return *joint;
}

TEST(Detector, TinyShapesStage1AndCodebook) {
  for (bool codebook : {false, true}) {
    SCOPED_TRACE(codebook ? "codebook" : "stage 1");
    torch::manual_seed(0);
    StageConfig cfg = TinyConfig(codebook);
    auto model = MakeDetector(cfg);
    ASSERT_TRUE(model.ok()) << model.status();
    const CollatedFrame f1 = MakeFrame(cfg, {kFourAgents[0], kFourAgents[1]}, 200, 1);
    const CollatedFrame f2 = MakeFrame(cfg, kFourAgents, 200, 2);
    (*model)->train();
    auto out = RunDetector(*model, {&f1, &f2});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->record_len, (std::vector<int64_t>{2, 4}));
    EXPECT_EQ(out->cls.sizes(), (Shape{2, 6, 16, 32}));
    EXPECT_EQ(out->reg.sizes(), (Shape{2, 42, 16, 32}));
    EXPECT_EQ(out->dir.sizes(), (Shape{2, 12, 16, 32}));
    ASSERT_EQ(out->occupancy.size(), 3u);
    EXPECT_EQ(out->occupancy[0].sizes(), (Shape{6, 1, 16, 32}));
    EXPECT_EQ(out->occupancy[1].sizes(), (Shape{6, 1, 8, 16}));
    EXPECT_EQ(out->occupancy[2].sizes(), (Shape{6, 1, 4, 8}));
    EXPECT_EQ(out->codebook_loss.defined(), codebook);

    (*model)->eval();
    torch::NoGradGuard g;
    auto ego = RunDetector(*model, {&f2}, /*ego_only=*/true);
    ASSERT_TRUE(ego.ok()) << ego.status();
    EXPECT_EQ(ego->record_len, (std::vector<int64_t>{1}));
    EXPECT_EQ(ego->cls.sizes(), (Shape{1, 6, 16, 32}));
    EXPECT_EQ(ego->occupancy[0].size(0), 1);
    // Cooperation changes the ego's output.
    auto coop = RunDetector(*model, {&f2});
    ASSERT_TRUE(coop.ok());
    EXPECT_FALSE(torch::allclose(coop->cls, ego->cls));
  }
}

// SPEC §3's CPU preset shape (the preset file itself is checked in model_presets_test).
TEST(Detector, CpuSizedFourAgentShapes) {
  torch::manual_seed(1);
  StageConfig cfg = CpuConfig(true);
  auto model = MakeDetector(cfg);
  ASSERT_TRUE(model.ok()) << model.status();
  (*model)->eval();
  torch::NoGradGuard g;
  const CollatedFrame f = MakeFrame(cfg, kFourAgents, 3000, 3);
  auto out = RunDetector(*model, {&f});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->cls.sizes(), (Shape{1, 6, 64, 128}));
  EXPECT_EQ(out->reg.sizes(), (Shape{1, 42, 64, 128}));
  EXPECT_EQ(out->dir.sizes(), (Shape{1, 12, 64, 128}));
  EXPECT_EQ(out->occupancy[2].sizes(), (Shape{4, 1, 16, 32}));
  EXPECT_TRUE(torch::isfinite(out->reg).all().item<bool>());
}

// What the services run (agent: Encode → indices; ego: Fuse) equals the joint eval forward.
TEST(Detector, SplitEqualsJointForward) {
  for (bool codebook : {false, true}) {
    SCOPED_TRACE(codebook ? "codebook" : "stage 1");
    torch::manual_seed(4);
    StageConfig cfg = TinyConfig(codebook);
    auto model = MakeDetector(cfg);
    ASSERT_TRUE(model.ok());
    (*model)->eval();
    const CollatedFrame f =
        MakeFrame(cfg, {kFourAgents[0], kFourAgents[1], kFourAgents[2]}, 250, 5);
    std::vector<AgentMessage> messages;
    for (size_t i = 0; i < f.agents.size(); ++i) {
      auto enc = (*model)->agent_encoder()->Encode(f.agents[i].pillars);
      ASSERT_TRUE(enc.ok()) << enc.status();
      AgentMessage m;
      if (codebook) {
        m.indices = enc->indices.to(torch::kUInt8);  // the narrow wire type
      } else {
        m.features = enc->features;
      }
      m.warp = f.warp_to_ego[i];
      messages.push_back(m);
    }
    ExpectFuseEqualsJoint(*model, f, messages);
  }
}

// Training with sparse messages (AgentInput::sparse) sees exactly what the runtime fuses:
// the sparse agents' unsent cells decoded from kUnsentCode, i.e. zero features.
TEST(Detector, SparseAgentsJointEqualsRuntimeDecode) {
  torch::manual_seed(6);
  StageConfig cfg = TinyConfig(/*codebook=*/true);
  auto model = MakeDetector(cfg);
  ASSERT_TRUE(model.ok());
  (*model)->eval();
  CollatedFrame f = MakeFrame(cfg, {kFourAgents[0], kFourAgents[1], kFourAgents[2]}, 250, 7);
  CellSelection sel;
  sel.min_height_span_m = 2.5;  // random z in [-2, 2]: some pillars span it, most not
  sel.dilation_cells = 1;
  f.agents[1].sparse = sel;
  std::vector<AgentMessage> messages;
  int64_t unsent = 0, cells = 0;
  for (size_t i = 0; i < f.agents.size(); ++i) {
    auto enc = (*model)->agent_encoder()->Encode(f.agents[i].pillars);
    ASSERT_TRUE(enc.ok()) << enc.status();
    AgentMessage m;
    m.indices = enc->indices;
    if (f.agents[i].sparse) {
      const int64_t h = m.indices.size(1), w = m.indices.size(2);
      auto mask = SelectCells(f.agents[i].pillars, h, w, *f.agents[i].sparse);
      ASSERT_TRUE(mask.ok()) << mask.status();
      const torch::Tensor keep =
          torch::from_blob(mask->data(), {1, h, w}, torch::kUInt8).to(torch::kBool);
      m.indices = m.indices.masked_fill(keep.logical_not(), kUnsentCode);
      unsent = (~keep).sum().item<int64_t>();
      cells = h * w;
    }
    m.warp = f.warp_to_ego[i];
    messages.push_back(m);
  }
  ASSERT_GT(unsent, 0);
  ASSERT_LT(unsent, cells);
  const DetectorOutput joint = ExpectFuseEqualsJoint(*model, f, messages);
  ASSERT_TRUE(joint.cls.defined());
  // And the selection matters: the same frame dense differs.
  f.agents[1].sparse.reset();
  torch::NoGradGuard g;
  auto dense = RunDetector(*model, {&f});
  ASSERT_TRUE(dense.ok());
  EXPECT_FALSE(torch::allclose(dense->cls, joint.cls, 1e-4, 1e-5));
}

TEST(Detector, TrainingGradientsReachEveryParameter) {
  torch::manual_seed(6);
  StageConfig cfg = TinyConfig(true);
  auto model = MakeDetector(cfg);
  ASSERT_TRUE(model.ok());
  (*model)->train();
  const CollatedFrame f = MakeFrame(cfg, {kFourAgents[0], kFourAgents[1]}, 300, 7);
  auto out = RunDetector(*model, {&f, &f});
  ASSERT_TRUE(out.ok()) << out.status();
  torch::Tensor loss =
      out->cls.pow(2).mean() + out->reg.pow(2).mean() + out->dir.pow(2).mean() + out->codebook_loss;
  for (const auto& occ : out->occupancy) loss = loss + occ.pow(2).mean();
  loss.backward();
  for (const auto& p : (*model)->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

TEST(Detector, RejectsMalformedBatches) {
  StageConfig cfg = TinyConfig(false);
  auto model = MakeDetector(cfg);
  ASSERT_TRUE(model.ok());
  EXPECT_FALSE(RunDetector(*model, {}).ok());
  CollatedFrame f = MakeFrame(cfg, {kFourAgents[0], kFourAgents[1]}, 50, 8);
  f.warp_to_ego.pop_back();
  EXPECT_FALSE(RunDetector(*model, {&f}).ok());
  CollatedFrame g = MakeFrame(cfg, {kFourAgents[0]}, 50, 9);
  g.agents[0].pillars.num_points.pop_back();
  EXPECT_FALSE(RunDetector(*model, {&g}).ok());
}

}  // namespace
}  // namespace qv2x
