// Building blocks: PillarVFE, scatter, backbone, QuantV2X names and parameter counts at
// v2x_real, config validation.
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/model/checkpoint.h"
#include "core/model/detector.h"
#include "core/model/model_cost.h"
#include "core/model/model_summary.h"
#include "core/model/model_validation.h"
#include "core/model/pillar_encoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/model_test_util.h"

namespace qv2x {
namespace {

using ::testing::HasSubstr;
using testing::RandomPillars;
using testing::TinyConfig;
using testing::V2xRealConfig;

std::string ShapeText(const torch::Tensor& t) {
  if (t.dim() == 0) return "scalar";
  std::vector<int64_t> s(t.sizes().begin(), t.sizes().end());
  return absl::StrJoin(s, "x");
}

TEST(PillarVfe, KnownAnswerWithPaddedSlotsMasked) {
  PillarVfeConfig cfg;
  cfg.num_filters = {2};
  cfg.bn_eps = 0.0;
  PillarVfe vfe(cfg, kNumPointFeatures);
  vfe->eval();
  {
    torch::NoGradGuard g;
    // Unit 0 reads feature 0, unit 1 reads minus feature 1; BN is the identity.
    auto w = vfe->named_parameters()["pfn_layers.0.linear.weight"];
    w.zero_();
    w[0][0] = 1.f;
    w[1][1] = -1.f;
  }
  // One pillar of 3 slots, 2 real points; the padded slot holds garbage to be masked.
  torch::Tensor f = torch::zeros({1, 3, kNumPointFeatures});
  f[0][0][0] = 0.5f, f[0][0][1] = 2.f;
  f[0][1][0] = -1.f, f[0][1][1] = -3.f;
  f[0][2][0] = 9.f, f[0][2][1] = -9.f;
  const torch::Tensor out = vfe(f, torch::tensor({2}, torch::kInt32));
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{1, 2}));
  // max(relu(0.5), relu(-1), relu(0)) = 0.5; max(relu(-2), relu(3), 0) = 3.
  EXPECT_FLOAT_EQ(out[0][0].item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(out[0][1].item<float>(), 3.f);
}

// The eval path folds BN after the max (with min for negative BN scales) and works in
// chunks; it must equal the plain per-point formula, padded slots included.
TEST(PillarVfe, FoldedEvalPathEqualsPerPointFormula) {
  torch::manual_seed(3);
  PillarVfeConfig cfg;
  cfg.num_filters = {8};
  PillarVfe vfe(cfg, kNumPointFeatures);
  auto params = vfe->named_parameters();
  auto buffers = vfe->named_buffers();
  {
    torch::NoGradGuard g;
    params["pfn_layers.0.norm.weight"].copy_(torch::randn({8}));  // some scales negative
    params["pfn_layers.0.norm.bias"].copy_(torch::randn({8}));
    buffers["pfn_layers.0.norm.running_mean"].copy_(torch::randn({8}));
    buffers["pfn_layers.0.norm.running_var"].copy_(torch::rand({8}) + 0.5);
  }
  ASSERT_TRUE((params["pfn_layers.0.norm.weight"] < 0).any().item<bool>());
  const Pillars p = RandomPillars(40, 40, 32, 1500, 4);  // > one 1024-pillar chunk
  torch::Tensor f = torch::from_blob(const_cast<float*>(p.features.data()), {1500, 32, 10}).clone();
  const torch::Tensor n =
      torch::from_blob(const_cast<int32_t*>(p.num_points.data()), {1500}, torch::kInt32);
  // Garbage in the padded slots must not matter.
  const torch::Tensor pad = torch::arange(32).unsqueeze(0) >= n.unsqueeze(1);
  f.masked_fill_(pad.unsqueeze(2), 7.f);

  vfe->eval();
  torch::NoGradGuard g;
  const torch::Tensor folded = vfe(f, n);
  const torch::Tensor clean = f.masked_fill(pad.unsqueeze(2), 0.f);
  const torch::Tensor z = clean.matmul(params["pfn_layers.0.linear.weight"].t());
  const torch::Tensor bn = (z - buffers["pfn_layers.0.norm.running_mean"]) /
                               torch::sqrt(buffers["pfn_layers.0.norm.running_var"] + 1e-3) *
                               params["pfn_layers.0.norm.weight"] +
                           params["pfn_layers.0.norm.bias"];
  const torch::Tensor want = bn.relu().amax(1);
  EXPECT_TRUE(torch::allclose(folded, want, 1e-5, 1e-5))
      << (folded - want).abs().max().item<float>();
}

TEST(Scatter, PillarLandsAtRowYColumnX) {
  Pillars a;
  a.grid_h = 3, a.grid_w = 5, a.max_points = 1, a.num_pillars = 2;
  a.features.assign(2 * kNumPointFeatures, 0.f);
  a.num_points = {1, 1};
  a.coords = {2, 4, 0, 1};  // (row, col)
  Pillars b = a;
  b.num_pillars = 1;
  b.features.resize(kNumPointFeatures);
  b.num_points = {1};
  b.coords = {1, 3};
  const PillarBatch batch = MakePillarBatch({&a, &b});
  ASSERT_EQ(batch.pillars_per_agent, (std::vector<int64_t>{2, 1}));
  const torch::Tensor feats = torch::tensor({{1.f, 10.f}, {2.f, 20.f}, {3.f, 30.f}});
  const torch::Tensor bev = ScatterToBev(feats, batch);
  ASSERT_EQ(bev.sizes(), (std::vector<int64_t>{2, 2, 3, 5}));
  EXPECT_EQ(bev[0][0][2][4].item<float>(), 1.f);
  EXPECT_EQ(bev[0][1][2][4].item<float>(), 10.f);
  EXPECT_EQ(bev[0][0][0][1].item<float>(), 2.f);
  EXPECT_EQ(bev[1][1][1][3].item<float>(), 30.f);
  EXPECT_EQ(bev.abs().sum().item<float>(), 1.f + 10 + 2 + 20 + 3 + 30);
  for (int64_t agent = 0; agent < 2; ++agent) {
    EXPECT_TRUE(torch::equal(ScatterAgentToBev(feats, batch, agent), bev.narrow(0, agent, 1)));
  }
}

TEST(AgentEncoder, TinyShapesAndEmptySweep) {
  StageConfig cfg = TinyConfig(/*codebook=*/true);
  auto enc = MakeAgentEncoder(cfg);
  ASSERT_TRUE(enc.ok()) << enc.status();
  (*enc)->eval();
  const Pillars p = RandomPillars(32, 64, 8, 300, 1);
  auto out = (*enc)->Encode(p);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->features.sizes(), (std::vector<int64_t>{16, 16, 32}));
  EXPECT_EQ(out->indices.sizes(), (std::vector<int64_t>{1, 16, 32}));
  EXPECT_EQ(out->indices.scalar_type(), torch::kInt64);

  Pillars empty = p;
  empty.num_pillars = 0;
  empty.features.clear(), empty.num_points.clear(), empty.coords.clear();
  auto none = (*enc)->Encode(empty);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->features.sizes(), (std::vector<int64_t>{16, 16, 32}));

  Pillars bad = p;
  bad.coords[0] = 32;  // row outside the 32-row grid
  auto refused = (*enc)->Encode(bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("outside"));
}

// Every stage-1 tensor of QuantV2X's V2X-Real model exists here with the same shape,
// except the cls head (6 single-logit anchors here, 18 there).
TEST(Names, MatchQuantV2xStateDictAtV2xReal) {
  auto model = MakeDetector(V2xRealConfig(/*codebook=*/false));
  ASSERT_TRUE(model.ok()) << model.status();
  std::map<std::string, std::string> ours;
  for (const auto& [name, t] : StateDict(**model)) ours[name] = ShapeText(t);

  std::ifstream in("tests/data/model/quantv2x_state_dict_v2x_real.tsv");
  ASSERT_TRUE(in.good());
  std::string line;
  int checked = 0;
  std::map<std::string, std::string> theirs;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> col = absl::StrSplit(line, '\t');
    ASSERT_EQ(col.size(), 3u) << line;
    if (col[0] != "stage1") continue;
    theirs[col[1]] = col[2];
  }
  for (const auto& [name, shape] : theirs) {
    ASSERT_TRUE(ours.count(name)) << "missing " << name;
    if (name.rfind("cls_head.", 0) == 0) continue;
    EXPECT_EQ(ours[name], shape) << name;
    ++checked;
  }
  EXPECT_EQ(theirs.size(), 382u);  // QuantV2X's stage-1 tensors
  EXPECT_EQ(checked, 380);
  EXPECT_EQ(ours.size(), theirs.size());  // nothing extra either
  EXPECT_EQ(ours["cls_head.weight"], "6x256x1x1");
}

TEST(Summary, V2xRealParameterCountsMatchSpec) {
  auto s = SummarizeModel(V2xRealConfig(/*codebook=*/true));
  ASSERT_TRUE(s.ok()) << s.status();
  std::map<std::string, int64_t> by_name;
  for (const auto& m : s->modules) by_name[m.name] = m.parameters;
  EXPECT_EQ(by_name["encoder_m1"], 768);
  EXPECT_EQ(by_name["backbone_m1"], 226176);
  EXPECT_EQ(by_name["pyramid_backbone"], 3757635);
  EXPECT_EQ(by_name["shrink_conv"], 1475072);
  EXPECT_EQ(by_name["codebook"], 128 * 64);
  EXPECT_EQ(by_name["cls_head"], 256 * 6 + 6);
  EXPECT_EQ(by_name["reg_head"], 256 * 42 + 42);
  EXPECT_EQ(by_name["dir_head"], 256 * 12 + 12);
  EXPECT_NEAR(static_cast<double>(s->parameters), 5.6e6, 0.05 * 5.6e6);
  EXPECT_EQ(s->fp32_bytes, 4 * s->parameters);
  EXPECT_EQ(s->geometry.pillar_w, 704);
  EXPECT_EQ(s->geometry.pillar_h, 200);
  EXPECT_EQ(s->geometry.feature_w, 352);
  EXPECT_EQ(s->geometry.feature_h, 100);
}

// SPEC §3: the shrink header costs ~52 of ~75 G multiply-adds for one agent.
TEST(Cost, V2xRealMultiplyAddsMatchSpec) {
  auto c = EstimateModelCost(V2xRealConfig(/*codebook=*/false));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->shrink_per_frame, (384LL * 256 * 9 + 256LL * 256 * 9) * 100 * 352);
  EXPECT_EQ(c->backbone_per_agent, (6LL * 64 * 64 * 9 + 64 * 64) * 100 * 352);
  const double one_agent = static_cast<double>(c->EncodeMacs(20000) + c->FuseMacs(1));
  EXPECT_NEAR(one_agent, 75e9, 3e9);
}

// The expensive v2x_real modules at full width on a small map: the agent side keeps the
// 704 x 200 canvas, the ego side runs on a 32 x 32 crop.
TEST(Shapes, V2xRealSubParts) {
  StageConfig cfg = V2xRealConfig(/*codebook=*/true);
  auto model = MakeDetector(cfg);
  ASSERT_TRUE(model.ok()) << model.status();
  (*model)->eval();
  torch::NoGradGuard g;
  const Pillars p = RandomPillars(200, 704, 32, 500, 3);
  const torch::Tensor bev = (*model)->agent_encoder()->encoder_m1(MakePillarBatch({&p}));
  EXPECT_EQ(bev.sizes(), (std::vector<int64_t>{1, 64, 200, 704}));
  const torch::Tensor crop = bev.narrow(2, 80, 64).narrow(3, 320, 64).contiguous();
  const torch::Tensor feat = (*model)->agent_encoder()->backbone_m1(crop);
  EXPECT_EQ(feat.sizes(), (std::vector<int64_t>{1, 64, 32, 32}));
  const torch::Tensor idx = (*model)->codebook()->Encode(feat);
  EXPECT_EQ(idx.sizes(), (std::vector<int64_t>{1, 1, 32, 32}));
  const torch::Tensor two = torch::cat({feat, feat});
  HeadOutput out = (*model)->ego_fusion()->forward(two, {2}, torch::eye(2, 3).expand({2, 2, 3}));
  EXPECT_EQ(out.cls.sizes(), (std::vector<int64_t>{1, 6, 32, 32}));
  EXPECT_EQ(out.reg.sizes(), (std::vector<int64_t>{1, 42, 32, 32}));
  EXPECT_EQ(out.dir.sizes(), (std::vector<int64_t>{1, 12, 32, 32}));
  ASSERT_EQ(out.occupancy.size(), 3u);
  EXPECT_EQ(out.occupancy[0].sizes(), (std::vector<int64_t>{2, 1, 32, 32}));
  EXPECT_EQ(out.occupancy[1].sizes(), (std::vector<int64_t>{2, 1, 16, 16}));
  EXPECT_EQ(out.occupancy[2].sizes(), (std::vector<int64_t>{2, 1, 8, 8}));
}

TEST(Validation, ErrorsNameTheKey) {
  StageConfig cfg = TinyConfig(true);
  cfg.model.shrink_header.input_dim = 40;
  EXPECT_THAT(ValidateModelConfig(cfg).message(), HasSubstr("model.args.shrink_header.input_dim"));
  cfg = TinyConfig(true);
  cfg.model.codebook.channel = 32;
  EXPECT_THAT(ValidateModelConfig(cfg).message(), HasSubstr("model.args.codebook.channel"));
  cfg = TinyConfig(false);
  cfg.model.fusion_backbone.upsample_strides = {1, 2, 2};
  EXPECT_THAT(ValidateModelConfig(cfg).message(), HasSubstr("fusion_backbone.upsample_strides"));
  cfg = TinyConfig(false);
  cfg.model.anchor_number = 4;
  EXPECT_THAT(ValidateModelConfig(cfg).message(), HasSubstr("model.args.anchor_number"));
  cfg = TinyConfig(false);
  cfg.model.fusion_backbone.num_filters = {16, 32};
  auto bad = MakeDetector(cfg);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("fusion_backbone.num_filters"));
  EXPECT_TRUE(ValidateModelConfig(TinyConfig(true)).ok());
  EXPECT_TRUE(ValidateModelConfig(V2xRealConfig(true)).ok());
}

}  // namespace
}  // namespace qv2x
