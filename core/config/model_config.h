// Typed form of a stage YAML (configs/<preset>/stage{1,2,3}.yaml). Key names follow
// OpenCOOD/QuantV2X hypes files; every number of SPEC §3-§6 is a key here, none is a
// constant in code. Parsed by LoadStageConfig() (stage_config.cc).
#ifndef QV2X_CORE_CONFIG_MODEL_CONFIG_H_
#define QV2X_CORE_CONFIG_MODEL_CONFIG_H_

#include <array>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace qv2x {

// preprocess: (SpVoxelPreprocessor)
struct VoxelConfig {
  std::array<double, 6> lidar_range{};  // cav_lidar_range: x0 y0 z0 x1 y1 z1
  std::array<double, 3> voxel_size{};   // args.voxel_size
  int max_points_per_voxel = 32;        // args.max_points_per_voxel
  int max_voxel_train = 32000;          // args.max_voxel_train
  int max_voxel_test = 70000;           // args.max_voxel_test
  bool use_intensity = true;            // false: intensity forced to 0 (V2X-Real)
  // Points inside this box around the sensor (x0 y0 x1 y1, sensor frame) are the agent's
  // own body and are removed. preprocess.ego_body_box
  std::array<double, 4> ego_body_box{-2.5, -1.1, 2.5, 1.1};

  int grid_w() const;  // pillars along x
  int grid_h() const;  // pillars along y
};

// model.args.pillar_vfe
struct PillarVfeConfig {
  std::vector<int> num_filters{64};
  double bn_eps = 1e-3;
  double bn_momentum = 0.01;
};

// model.args.backbone (per-agent ResNet BEV backbone)
struct BackboneConfig {
  std::vector<int> layer_nums{3};
  std::vector<int> layer_strides{2};
  std::vector<int> num_filters{64};
  int inplanes = 64;
  double bn_eps = 1e-5;
};

// model.args.fusion_backbone (PyramidFusion)
struct PyramidConfig {
  std::vector<int> layer_nums{3, 5, 8};
  std::vector<int> layer_strides{1, 2, 2};
  std::vector<int> num_filters{64, 128, 256};
  std::vector<int> upsample_strides{1, 2, 4};
  std::vector<int> num_upsample_filters{128, 128, 128};
  int groups = 32;
  int width_per_group = 4;
  double bn_eps = 1e-5;         // residual blocks
  double deconv_bn_eps = 1e-3;  // decoders
  double deconv_bn_momentum = 0.01;
};

// model.args.shrink_header: two 3x3 convs (input_dim -> dim -> dim), ReLU, no BN.
struct ShrinkConfig {
  int input_dim = 384;
  int dim = 256;
  int kernel_size = 3;
  int stride = 1;
  int padding = 1;
};

// model.args.codebook (only for the codebook model)
// model.args.codebook. `variant`: kCodebookQv2x (segment codewords; with several residual
// levels each quantises what the ones before left over and the reconstructions add up) or
// kCodebookUmgm (QuantV2X's multi-level codebook with Linear heads per level, whose
// checkpoints load as they are; ../shared/reference/quantv2x-codebook-and-heads.md).
inline constexpr char kCodebookQv2x[] = "qv2x";
inline constexpr char kCodebookUmgm[] = "umgm";
struct CodebookConfig {
  int seg_num = 1;
  int dict_size = 128;
  int channel = 64;
  int residual_levels = 1;
  std::string variant = kCodebookQv2x;
};

// model.args.dir_args
struct DirConfig {
  double dir_offset = 0.7853981633974483;
  int num_bins = 2;
};

// model.core_method values: stage 1 trains the first, stages 2 and 3 the second.
inline constexpr char kModelWithoutCodebook[] = "heter_pyramid_collab_mc";
inline constexpr char kModelWithCodebook[] = "heter_pyramid_collab_codebook_mc";

struct ModelConfig {
  std::string core_method;  // kModelWithoutCodebook | kModelWithCodebook
  bool with_codebook = false;
  PillarVfeConfig pillar_vfe;
  BackboneConfig backbone;
  PyramidConfig fusion_backbone;
  ShrinkConfig shrink_header;
  CodebookConfig codebook;
  DirConfig dir_args;
  int anchor_number = 6;  // anchors per cell; reg = 7x, dir = num_bins x channels
  // cls head layout: kClsHeadAnchor (one logit per anchor) or kClsHeadClassVector (one logit
  // per anchor and class, QuantV2X's 18-channel head at 6 anchors and 3 classes).
  std::string cls_head = "anchor";
};
inline constexpr char kClsHeadAnchor[] = "anchor";
inline constexpr char kClsHeadClassVector[] = "class_vector";

// postprocess.anchor_args.classes[i]
struct AnchorClassConfig {
  std::string name;  // vehicle | pedestrian | truck
  double l = 0, w = 0, h = 0, z = 0;
  double pos_threshold = 0.6, neg_threshold = 0.45;
};

// postprocess:
struct PostprocessConfig {
  int feature_stride = 2;                  // anchor_args.feature_stride
  std::vector<double> yaws_deg{0, 90};     // anchor_args.r
  std::vector<AnchorClassConfig> classes;  // anchor_args.classes, in head order
  double score_threshold = 0.20;           // target_args.score_threshold
  double nms_thresh = 0.15;
  int max_num = 1000;                // top-k by score before NMS
  std::array<double, 6> gt_range{};  // evaluation range (postprocess.gt_range)
};

// loss.args
struct LossConfig {
  double cls_alpha = 0.25, cls_gamma = 2.0, cls_weight = 1.0;
  double reg_beta = 1.0 / 9.0, reg_weight = 2.0;
  double dir_weight = 0.2;
  std::vector<double> pyramid_weights{0.4, 0.2, 0.1};  // stage 1 occupancy loss per level
  double codebook_weight = 0.05;                       // stage 3 (stage3_codebook_weight)
};

// optimizer: / lr_scheduler:
struct OptimizerConfig {
  std::string core_method = "Adam";
  double lr = 0.002;
  double eps = 1e-10;
  double weight_decay = 1e-4;
  std::string scheduler = "multistep";
  double gamma = 0.1;
  std::vector<int> step_size{15, 25};
};

// train_params:
struct TrainParams {
  int batch_size = 8;
  int epoches = 20;
  int eval_freq = 2;
  int save_freq = 2;
  int max_cav = 4;
  int seed = 0;
  int train_frames = 0;  // frames of root_dir used per epoch; 0 = all
  int val_frames = 0;    // frames of validate_dir used per validation; 0 = all
};

// One stage YAML.
struct StageConfig {
  std::string name;
  int stage = 1;             // 1, 2 or 3
  std::string root_dir;      // training data: dataset folder or sim:<scene.yaml>
  std::string validate_dir;  // validation data, same forms
  std::string test_dir;      // held-out data, same forms
  // How dataset folders are read (core/data/opv2v_reader.h): V2X-Real's dataset mode
  // (vc, v2v, ic, i2i) and what an agent missing at a timestamp does (skip, stop).
  std::string dataset_mode = "vc";
  std::string missing_agent = "skip";
  double comm_range = 70;
  int num_class = 3;
  VoxelConfig preprocess;
  ModelConfig model;
  PostprocessConfig postprocess;
  LossConfig loss;
  OptimizerConfig optimizer;
  TrainParams train_params;
  std::string source_yaml;  // the YAML text it was parsed from (travels in checkpoints)
};

// Output channels of the cls head: anchor_number, times the number of anchor classes with
// cls_head class_vector.
inline int ClsHeadChannels(const StageConfig& cfg) {
  const int per_anchor = cfg.model.cls_head == kClsHeadClassVector
                             ? static_cast<int>(cfg.postprocess.classes.size())
                             : 1;
  return cfg.model.anchor_number * per_anchor;
}

// Parses and validates a stage YAML; every error names the key path. `overrides` are
// `key.path=value` assignments applied before parsing (see ApplyOverride). The key tree is
// documented in docs/config.md.
absl::StatusOr<StageConfig> LoadStageConfig(const std::string& file,
                                            const std::vector<std::string>& overrides = {});
absl::StatusOr<StageConfig> ParseStageConfig(const YAML::Node& root);
absl::StatusOr<StageConfig> ParseStageConfigString(const std::string& yaml_text);

// The cross-field rules (agreeing vector lengths, channel counts that chain, grid sizes
// the strides divide, stage vs. model variant, ...) on an already typed config, for code
// that edits a parsed config before building from it. Errors name the YAML key.
absl::Status ValidateStageConfig(const StageConfig& cfg);

}  // namespace qv2x

#endif  // QV2X_CORE_CONFIG_MODEL_CONFIG_H_
