// Stage YAML parsing: the presets, the exact error messages and every cross-field rule.
// Runs from the repository root (ctest's working directory), where configs/ lives.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/common/file_util.h"
#include "core/config/model_config.h"
#include "core/config/yaml_reader.h"

namespace qv2x {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Preset(const std::string& preset, int stage) {
  return "configs/" + preset + "/stage" + std::to_string(stage) + ".yaml";
}

TEST(StageConfigTest, EveryPresetParses) {
  for (const std::string preset : {"v2x_real", "cpu", "tiny", "quantv2x"}) {
    for (int stage = 1; stage <= 3; ++stage) {
      SCOPED_TRACE(Preset(preset, stage));
      auto cfg = LoadStageConfig(Preset(preset, stage));
      ASSERT_TRUE(cfg.ok()) << cfg.status();
      EXPECT_EQ(cfg->stage, stage);
      EXPECT_EQ(cfg->name, preset + "_stage" + std::to_string(stage));
      EXPECT_EQ(cfg->model.with_codebook, stage > 1);
      EXPECT_EQ(cfg->model.core_method, stage == 1 ? kModelWithoutCodebook : kModelWithCodebook);
      EXPECT_EQ(cfg->num_class, 3);
      EXPECT_EQ(cfg->model.anchor_number, 6);
      // Without overrides the file text travels verbatim.
      EXPECT_EQ(cfg->source_yaml, *ReadFile(Preset(preset, stage)));
    }
  }
}

TEST(StageConfigTest, V2xRealMatchesSpec) {
  auto cfg = LoadStageConfig(Preset("v2x_real", 3));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const VoxelConfig& v = cfg->preprocess;
  EXPECT_EQ(v.lidar_range, (std::array<double, 6>{-140.8, -40, -3, 140.8, 40, 1}));
  EXPECT_EQ(v.voxel_size, (std::array<double, 3>{0.4, 0.4, 4}));
  EXPECT_EQ(v.grid_w(), 704);
  EXPECT_EQ(v.grid_h(), 200);
  EXPECT_EQ(v.max_points_per_voxel, 32);
  EXPECT_EQ(v.max_voxel_train, 32000);
  EXPECT_EQ(v.max_voxel_test, 70000);
  EXPECT_FALSE(v.use_intensity);
  EXPECT_DOUBLE_EQ(cfg->comm_range, 70);
  EXPECT_EQ(cfg->train_params.max_cav, 4);

  const ModelConfig& m = cfg->model;
  EXPECT_EQ(m.pillar_vfe.num_filters, std::vector<int>{64});
  EXPECT_DOUBLE_EQ(m.pillar_vfe.bn_eps, 1e-3);
  EXPECT_EQ(m.backbone.layer_nums, std::vector<int>{3});
  EXPECT_EQ(m.backbone.layer_strides, std::vector<int>{2});
  EXPECT_EQ(m.backbone.num_filters, std::vector<int>{64});
  EXPECT_EQ(m.fusion_backbone.layer_nums, (std::vector<int>{3, 5, 8}));
  EXPECT_EQ(m.fusion_backbone.layer_strides, (std::vector<int>{1, 2, 2}));
  EXPECT_EQ(m.fusion_backbone.num_filters, (std::vector<int>{64, 128, 256}));
  EXPECT_EQ(m.fusion_backbone.upsample_strides, (std::vector<int>{1, 2, 4}));
  EXPECT_EQ(m.fusion_backbone.num_upsample_filters, (std::vector<int>{128, 128, 128}));
  EXPECT_EQ(m.fusion_backbone.groups, 32);
  EXPECT_EQ(m.fusion_backbone.width_per_group, 4);
  EXPECT_DOUBLE_EQ(m.fusion_backbone.bn_eps, 1e-5);
  EXPECT_DOUBLE_EQ(m.fusion_backbone.deconv_bn_eps, 1e-3);
  EXPECT_EQ(m.shrink_header.input_dim, 384);
  EXPECT_EQ(m.shrink_header.dim, 256);
  EXPECT_EQ(m.codebook.seg_num, 1);
  EXPECT_EQ(m.codebook.dict_size, 128);
  EXPECT_EQ(m.codebook.channel, 64);
  EXPECT_DOUBLE_EQ(m.dir_args.dir_offset, 0.7853981633974483);
  EXPECT_EQ(m.dir_args.num_bins, 2);

  const PostprocessConfig& p = cfg->postprocess;
  EXPECT_EQ(p.feature_stride, 2);
  EXPECT_EQ(p.yaws_deg, (std::vector<double>{0, 90}));
  ASSERT_EQ(p.classes.size(), 3u);
  struct Want {
    const char* name;
    double l, w, h, z, pos, neg;
  };
  const Want want[] = {{"vehicle", 3.9, 1.6, 1.56, -1.78, 0.6, 0.45},
                       {"pedestrian", 0.8, 0.6, 1.73, -0.6, 0.5, 0.35},
                       {"truck", 8, 3, 3, -1.78, 0.6, 0.45}};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(p.classes[i].name, want[i].name);
    EXPECT_DOUBLE_EQ(p.classes[i].l, want[i].l);
    EXPECT_DOUBLE_EQ(p.classes[i].w, want[i].w);
    EXPECT_DOUBLE_EQ(p.classes[i].h, want[i].h);
    EXPECT_DOUBLE_EQ(p.classes[i].z, want[i].z);
    EXPECT_DOUBLE_EQ(p.classes[i].pos_threshold, want[i].pos);
    EXPECT_DOUBLE_EQ(p.classes[i].neg_threshold, want[i].neg);
  }
  EXPECT_DOUBLE_EQ(p.score_threshold, 0.20);
  EXPECT_DOUBLE_EQ(p.nms_thresh, 0.15);
  EXPECT_EQ(p.max_num, 1000);

  const LossConfig& l = cfg->loss;
  EXPECT_DOUBLE_EQ(l.cls_alpha, 0.25);
  EXPECT_DOUBLE_EQ(l.cls_gamma, 2.0);
  EXPECT_DOUBLE_EQ(l.cls_weight, 1.0);
  EXPECT_DOUBLE_EQ(l.reg_beta, 1.0 / 9.0);
  EXPECT_DOUBLE_EQ(l.reg_weight, 2.0);
  EXPECT_DOUBLE_EQ(l.dir_weight, 0.2);
  EXPECT_EQ(l.pyramid_weights, (std::vector<double>{0.4, 0.2, 0.1}));
  EXPECT_DOUBLE_EQ(l.codebook_weight, 0.05);
}

TEST(StageConfigTest, V2xRealTrainingScheduleFollowsStageTable) {
  struct Want {
    double lr;
    std::vector<int> steps;
    int batch, epochs;
  };
  const Want want[] = {{0.002, {15, 25}, 8, 20}, {0.002, {15, 25}, 8, 20}, {0.0002, {5, 8}, 4, 10}};
  for (int stage = 1; stage <= 3; ++stage) {
    SCOPED_TRACE(stage);
    auto cfg = LoadStageConfig(Preset("v2x_real", stage));
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    const Want& w = want[stage - 1];
    EXPECT_EQ(cfg->optimizer.core_method, "Adam");
    EXPECT_DOUBLE_EQ(cfg->optimizer.lr, w.lr);
    EXPECT_DOUBLE_EQ(cfg->optimizer.eps, 1e-10);
    EXPECT_DOUBLE_EQ(cfg->optimizer.weight_decay, 1e-4);
    EXPECT_EQ(cfg->optimizer.scheduler, "multistep");
    EXPECT_DOUBLE_EQ(cfg->optimizer.gamma, 0.1);
    EXPECT_EQ(cfg->optimizer.step_size, w.steps);
    EXPECT_EQ(cfg->train_params.batch_size, w.batch);
    EXPECT_EQ(cfg->train_params.epoches, w.epochs);
  }
}

TEST(StageConfigTest, CpuAndTinyGrids) {
  auto cpu = LoadStageConfig(Preset("cpu", 2));
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_EQ(cpu->preprocess.grid_w(), 256);
  EXPECT_EQ(cpu->preprocess.grid_h(), 128);
  EXPECT_EQ(cpu->model.backbone.num_filters, std::vector<int>{64});  // v2x_real agent side
  EXPECT_EQ(cpu->model.codebook.channel, 64);
  EXPECT_EQ(cpu->model.fusion_backbone.num_filters, (std::vector<int>{32, 64, 128}));
  EXPECT_EQ(cpu->model.shrink_header.input_dim, 192);
  EXPECT_EQ(cpu->model.shrink_header.dim, 128);
  auto tiny = LoadStageConfig(Preset("tiny", 1));
  ASSERT_TRUE(tiny.ok()) << tiny.status();
  EXPECT_EQ(tiny->preprocess.grid_w(), 64);
  EXPECT_EQ(tiny->preprocess.grid_h(), 32);
  EXPECT_EQ(tiny->root_dir, "sim:configs/scenes/tiny.yaml");
}

TEST(StageConfigTest, BatchSizeTypeErrorIsExact) {
  auto cfg = LoadStageConfig(Preset("tiny", 1), {"train_params.batch_size=eight"});
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cfg.status().message(),
            "train_params.batch_size: expected a positive integer, got \"eight\"");
}

YAML::Node TinyDoc(int stage) {
  auto text = ReadFile(Preset("tiny", stage));
  EXPECT_TRUE(text.ok());
  return YAML::Load(*text);
}

TEST(StageConfigTest, UnknownKeyIsNamed) {
  YAML::Node root = TinyDoc(1);
  root["train_params"]["batch_sizee"] = 3;
  root["model"]["args"]["backbone"]["layer_num"] = YAML::Load("[3]");
  auto cfg = ParseStageConfig(root);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            "train_params.batch_sizee: unknown key; model.args.backbone.layer_num: unknown key");
}

TEST(StageConfigTest, MissingKeyIsNamed) {
  YAML::Node root = TinyDoc(1);
  root["model"]["args"]["backbone"].remove("layer_nums");
  auto cfg = ParseStageConfig(root);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(), "model.args.backbone.layer_nums: required key is missing");

  YAML::Node stage2 = TinyDoc(2);
  stage2["model"]["args"].remove("codebook");
  EXPECT_EQ(ParseStageConfig(stage2).status().message(),
            "model.args.codebook: required key is missing");
}

TEST(StageConfigTest, ParseFromNodeAndStringAgree) {
  YAML::Node root = TinyDoc(3);
  auto from_node = ParseStageConfig(root);
  ASSERT_TRUE(from_node.ok()) << from_node.status();
  // The emitted text parses back to the same config.
  auto again = ParseStageConfigString(from_node->source_yaml);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->optimizer.lr, from_node->optimizer.lr);
  EXPECT_EQ(again->model.codebook.dict_size, 16);
  EXPECT_EQ(again->postprocess.classes.size(), 3u);
}

TEST(StageConfigTest, OverrideChangesValueAndTravelsInSourceYaml) {
  auto cfg =
      LoadStageConfig(Preset("tiny", 1), {"train_params.epoches=7", "train_params.train_frames=3",
                                          "postprocess.anchor_args.classes[2].l=7.5"});
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->train_params.epoches, 7);
  EXPECT_EQ(cfg->train_params.train_frames, 3);
  EXPECT_EQ(cfg->train_params.val_frames, 0);
  EXPECT_DOUBLE_EQ(cfg->postprocess.classes[2].l, 7.5);
  auto reparsed = ParseStageConfigString(cfg->source_yaml);
  ASSERT_TRUE(reparsed.ok()) << reparsed.status();
  EXPECT_EQ(reparsed->train_params.epoches, 7);
  EXPECT_DOUBLE_EQ(reparsed->postprocess.classes[2].l, 7.5);
}

TEST(StageConfigTest, DatasetReadingKeysAreOptionalAndChecked) {
  auto cfg = LoadStageConfig(Preset("tiny", 1), {"dataset_mode=v2v", "missing_agent=stop"});
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->dataset_mode, "v2v");
  EXPECT_EQ(cfg->missing_agent, "stop");
  YAML::Node root = TinyDoc(1);
  root.remove("dataset_mode");
  root.remove("missing_agent");
  auto dflt = ParseStageConfig(root);
  ASSERT_TRUE(dflt.ok()) << dflt.status();
  EXPECT_EQ(dflt->dataset_mode, "vc");
  EXPECT_EQ(dflt->missing_agent, "skip");
  auto bad = LoadStageConfig(Preset("tiny", 1), {"dataset_mode=v2i"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), StartsWith("dataset_mode: "));
}

TEST(StageConfigTest, MisspeltOverridePathFails) {
  auto cfg = LoadStageConfig(Preset("tiny", 1), {"train_params.epoch=7"});
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(std::string(cfg.status().message()),
              StartsWith("train_params.epoch: no such key in the config"));
}

TEST(StageConfigTest, MissingFileIsNotFound) {
  EXPECT_EQ(LoadStageConfig("configs/tiny/stage9.yaml").status().code(),
            absl::StatusCode::kNotFound);
}

// One broken rule per row: the error must start with the key that carries it.
struct RuleCase {
  int stage;  // tiny preset stage file
  std::vector<std::string> overrides;
  std::string key;
  std::string detail;
};

class CrossFieldRuleTest : public ::testing::TestWithParam<RuleCase> {};

TEST_P(CrossFieldRuleTest, RejectsWithKey) {
  const RuleCase& c = GetParam();
  auto cfg = LoadStageConfig(Preset("tiny", c.stage), c.overrides);
  ASSERT_FALSE(cfg.ok()) << "accepted: " << testing::PrintToString(c.overrides);
  EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(cfg.status().message());
  EXPECT_THAT(msg, StartsWith(c.key + ": "));
  EXPECT_THAT(msg, HasSubstr(c.detail));
}

const RuleCase kRules[] = {
    {1,
     {"model.args.fusion_backbone.layer_nums=[1, 1]"},
     "model.args.fusion_backbone",
     "one entry per level"},
    {1, {"model.args.backbone.layer_strides=[2, 2]"}, "model.args.backbone", "one entry per level"},
    {1,
     {"model.args.fusion_backbone.width_per_group=3"},
     "model.args.fusion_backbone.width_per_group",
     "not a multiple of 64"},
    {1,
     {"model.args.fusion_backbone.upsample_strides=[1, 2, 2]"},
     "model.args.fusion_backbone.upsample_strides",
     "sits at stride 4"},
    {1,
     {"model.args.shrink_header.input_dim=64"},
     "model.args.shrink_header.input_dim",
     "sum(fusion_backbone.num_upsample_filters) = 48"},
    {1, {"model.args.shrink_header.padding=0"}, "model.args.shrink_header", "keep the map size"},
    {1, {"model.args.backbone.inplanes=32"}, "model.args.backbone.inplanes", "= 16"},
    {1, {"model.args.anchor_number=4"}, "model.args.anchor_number", "= 6, got 4"},
    {1, {"postprocess.anchor_args.r=[0]"}, "model.args.anchor_number", "= 3, got 6"},
    {1, {"num_class=2"}, "num_class", "= 3, got 2"},
    {2, {"model.args.codebook.channel=32"}, "model.args.codebook.channel", "= 16), got 32"},
    {2, {"model.args.codebook.seg_num=3"}, "model.args.codebook.seg_num", "not divisible"},
    {2, {"model.args.codebook.dict_size=1"}, "model.args.codebook.dict_size", "at least 2"},
    {1, {"stage=2"}, "model.core_method", "stage 2 expects heter_pyramid_collab_codebook_mc"},
    {3, {"stage=1"}, "model.core_method", "stage 1 expects heter_pyramid_collab_mc"},
    {2,
     {"stage=1", "model.core_method=heter_pyramid_collab_mc"},
     "model.args.codebook",
     "only heter_pyramid_collab_codebook_mc takes a codebook"},
    {1, {"stage=4"}, "stage", "expected an integer in [1, 3], got \"4\""},
    {1, {"model.core_method=pointpillar"}, "model.core_method", "expected one of"},
    {1,
     {"preprocess.cav_lidar_range=[-12.8, -6.4, -3, 13.6, 6.4, 1]"},
     "preprocess.cav_lidar_range",
     "symmetric"},
    {1,
     {"preprocess.cav_lidar_range=[-12.8, -6.0, -3, 12.8, 6.4, 1]"},
     "preprocess.cav_lidar_range",
     "symmetric"},
    {1,
     {"preprocess.cav_lidar_range=[-12.9, -6.4, -3, 12.9, 6.4, 1]"},
     "preprocess.cav_lidar_range",
     "not a whole number of voxels"},
    {1,
     {"preprocess.cav_lidar_range=[-12.4, -6.4, -3, 12.4, 6.4, 1]"},
     "preprocess.cav_lidar_range",
     "62 x 32 pillar grid must be divisible by the total stride 8"},
    {1,
     {"preprocess.cav_lidar_range=[12.8, -6.4, -3, -12.8, 6.4, 1]"},
     "preprocess.cav_lidar_range",
     "x0 < x1"},
    {1,
     {"preprocess.args.voxel_size=[0.4, 0.4, 2]"},
     "preprocess.args.voxel_size",
     "a pillar spans the whole z range"},
    {1, {"preprocess.ego_body_box=[2.5, -1.1, -2.5, 1.1]"}, "preprocess.ego_body_box", "x0 < x1"},
    {1,
     {"postprocess.anchor_args.classes[1].name=cyclist"},
     "postprocess.anchor_args.classes[1].name",
     "expected one of {vehicle, pedestrian, truck}, got \"cyclist\""},
    {1,
     {"postprocess.anchor_args.classes[1].name=vehicle"},
     "postprocess.anchor_args.classes[1].name",
     "listed twice"},
    {1,
     {"postprocess.anchor_args.classes[0].neg_threshold=0.7"},
     "postprocess.anchor_args.classes[0].neg_threshold",
     "must not exceed pos_threshold"},
    {1,
     {"postprocess.anchor_args.feature_stride=4"},
     "postprocess.anchor_args.feature_stride",
     "= 2), got 4"},
    {1, {"postprocess.anchor_args.r=[0, 180]"}, "postprocess.anchor_args.r[1]", "[0, 180)"},
    {1,
     {"postprocess.target_args.score_threshold=1.5"},
     "postprocess.target_args.score_threshold",
     "expected a number in [0, 1]"},
    {1,
     {"loss.args.pyramid.weights=[0.4, 0.2]"},
     "loss.args.pyramid.weights",
     "one weight per fusion_backbone level (3), got 2"},
    {1, {"lr_scheduler.step_size=[5, 3]"}, "lr_scheduler.step_size", "increasing"},
    {1, {"optimizer.core_method=SGD"}, "optimizer.core_method", "expected one of {Adam}"},
    {1, {"root_dir=\"\""}, "root_dir", "dataset folder or sim:"},
    {1, {"train_params.max_cav=0"}, "train_params.max_cav", "expected a positive integer"},
    {1, {"train_params.batch_size=3000000000"}, "train_params.batch_size", "below 2^31"},
    {1,
     {"model.args.pillar_vfe.num_filters=[16, -1]"},
     "model.args.pillar_vfe.num_filters[1]",
     "expected a positive integer"},
};

INSTANTIATE_TEST_SUITE_P(AllRules, CrossFieldRuleTest, ::testing::ValuesIn(kRules));

TEST(StageConfigTest, ValidateCatchesEditsToATypedConfig) {
  auto cfg = LoadStageConfig(Preset("cpu", 3));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(ValidateStageConfig(*cfg).ok());
  StageConfig edited = *cfg;
  edited.model.fusion_backbone.num_upsample_filters = {64, 64, 32};
  EXPECT_THAT(std::string(ValidateStageConfig(edited).message()),
              StartsWith("model.args.shrink_header.input_dim: "));
  edited = *cfg;
  edited.model.with_codebook = false;
  EXPECT_FALSE(ValidateStageConfig(edited).ok());
}

}  // namespace
}  // namespace qv2x
