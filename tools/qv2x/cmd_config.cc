// `qv2x config check`: parses and validates a stage YAML (with --set overrides) and prints
// a summary or the parsed config as JSON. A bad key prints its key-path message.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/common/status_macros.h"
#include "core/config/model_config.h"
#include "nlohmann/json.hpp"
#include "tools/qv2x/command.h"

namespace qv2x::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: qv2x config check --config FILE [--set key.path=value ...] [--json]

Parses and validates a stage YAML (configs/<preset>/stage{1,2,3}.yaml): every key must be
present and well typed, unknown keys are errors, and the cross-field rules (channel counts,
strides against the pillar grid, anchor count, stage vs. model variant, ...) must hold.
On success prints a summary (stage, model, pillar grid, anchors, training parameters);
on failure prints the offending key path and value, and exits non-zero.

flags:
  --config FILE        stage YAML to check
  --set key.path=value override one existing key before validation (repeatable); the value
                       is YAML, e.g. --set train_params.epoches=2 --set model.args.backbone.layer_nums=[2]
                       List elements are addressed as classes[0].l
  --json               print the parsed config as JSON (the YAML key tree plus a "derived"
                       section: grid and feature-map sizes, anchors per location)

The key tree is documented in docs/config.md.)";

nlohmann::json ToJson(const StageConfig& c) {
  using nlohmann::json;
  const VoxelConfig& v = c.preprocess;
  const ModelConfig& m = c.model;
  const PyramidConfig& p = m.fusion_backbone;
  json model_args = {
      {"pillar_vfe",
       {{"num_filters", m.pillar_vfe.num_filters},
        {"bn_eps", m.pillar_vfe.bn_eps},
        {"bn_momentum", m.pillar_vfe.bn_momentum}}},
      {"backbone",
       {{"layer_nums", m.backbone.layer_nums},
        {"layer_strides", m.backbone.layer_strides},
        {"num_filters", m.backbone.num_filters},
        {"inplanes", m.backbone.inplanes},
        {"bn_eps", m.backbone.bn_eps}}},
      {"fusion_backbone",
       {{"layer_nums", p.layer_nums},
        {"layer_strides", p.layer_strides},
        {"num_filters", p.num_filters},
        {"upsample_strides", p.upsample_strides},
        {"num_upsample_filters", p.num_upsample_filters},
        {"groups", p.groups},
        {"width_per_group", p.width_per_group},
        {"bn_eps", p.bn_eps},
        {"deconv_bn_eps", p.deconv_bn_eps},
        {"deconv_bn_momentum", p.deconv_bn_momentum}}},
      {"shrink_header",
       {{"input_dim", m.shrink_header.input_dim},
        {"dim", m.shrink_header.dim},
        {"kernel_size", m.shrink_header.kernel_size},
        {"stride", m.shrink_header.stride},
        {"padding", m.shrink_header.padding}}},
      {"dir_args", {{"dir_offset", m.dir_args.dir_offset}, {"num_bins", m.dir_args.num_bins}}},
      {"anchor_number", m.anchor_number}};
  if (m.with_codebook) {
    model_args["codebook"] = {{"seg_num", m.codebook.seg_num},
                              {"dict_size", m.codebook.dict_size},
                              {"channel", m.codebook.channel},
                              {"residual_levels", m.codebook.residual_levels}};
  }
  json classes = json::array();
  for (const AnchorClassConfig& a : c.postprocess.classes) {
    classes.push_back({{"name", a.name},
                       {"l", a.l},
                       {"w", a.w},
                       {"h", a.h},
                       {"z", a.z},
                       {"pos_threshold", a.pos_threshold},
                       {"neg_threshold", a.neg_threshold}});
  }
  int backbone_stride = 1;
  for (int s : m.backbone.layer_strides) backbone_stride *= s;
  return {
      {"name", c.name},
      {"stage", c.stage},
      {"root_dir", c.root_dir},
      {"validate_dir", c.validate_dir},
      {"test_dir", c.test_dir},
      {"comm_range", c.comm_range},
      {"num_class", c.num_class},
      {"train_params",
       {{"batch_size", c.train_params.batch_size},
        {"epoches", c.train_params.epoches},
        {"eval_freq", c.train_params.eval_freq},
        {"save_freq", c.train_params.save_freq},
        {"max_cav", c.train_params.max_cav},
        {"seed", c.train_params.seed},
        {"train_frames", c.train_params.train_frames},
        {"val_frames", c.train_params.val_frames}}},
      {"preprocess",
       {{"core_method", "SpVoxelPreprocessor"},
        {"cav_lidar_range", v.lidar_range},
        {"use_intensity", v.use_intensity},
        {"ego_body_box", v.ego_body_box},
        {"args",
         {{"voxel_size", v.voxel_size},
          {"max_points_per_voxel", v.max_points_per_voxel},
          {"max_voxel_train", v.max_voxel_train},
          {"max_voxel_test", v.max_voxel_test}}}}},
      {"model", {{"core_method", m.core_method}, {"args", model_args}}},
      {"postprocess",
       {{"core_method", "VoxelPostprocessor"},
        {"gt_range", c.postprocess.gt_range},
        {"anchor_args",
         {{"feature_stride", c.postprocess.feature_stride},
          {"r", c.postprocess.yaws_deg},
          {"classes", classes}}},
        {"target_args", {{"score_threshold", c.postprocess.score_threshold}}},
        {"nms_thresh", c.postprocess.nms_thresh},
        {"max_num", c.postprocess.max_num}}},
      {"loss",
       {{"core_method", "point_pillar_pyramid_loss"},
        {"args",
         {{"cls",
           {{"alpha", c.loss.cls_alpha},
            {"gamma", c.loss.cls_gamma},
            {"weight", c.loss.cls_weight}}},
          {"reg", {{"beta", c.loss.reg_beta}, {"weight", c.loss.reg_weight}}},
          {"dir", {{"weight", c.loss.dir_weight}}},
          {"pyramid", {{"weights", c.loss.pyramid_weights}}},
          {"codebook_weight", c.loss.codebook_weight}}}}},
      {"optimizer",
       {{"core_method", c.optimizer.core_method},
        {"lr", c.optimizer.lr},
        {"args", {{"eps", c.optimizer.eps}, {"weight_decay", c.optimizer.weight_decay}}}}},
      {"lr_scheduler",
       {{"core_method", c.optimizer.scheduler},
        {"gamma", c.optimizer.gamma},
        {"step_size", c.optimizer.step_size}}},
      {"derived",
       {{"grid_w", v.grid_w()},
        {"grid_h", v.grid_h()},
        {"feature_w", v.grid_w() / backbone_stride},
        {"feature_h", v.grid_h() / backbone_stride},
        {"anchors_per_location", m.anchor_number}}},
  };
}

std::string Summary(const std::string& file, const StageConfig& c) {
  const VoxelConfig& v = c.preprocess;
  const ModelConfig& m = c.model;
  int backbone_stride = 1;
  for (int s : m.backbone.layer_strides) backbone_stride *= s;
  std::string model = m.core_method;
  if (m.with_codebook) {
    absl::StrAppend(&model, " (codebook ", m.codebook.seg_num, " x ", m.codebook.dict_size, " x ",
                    m.codebook.channel / m.codebook.seg_num, ")");
  }
  std::vector<std::string> classes;
  for (const AnchorClassConfig& a : c.postprocess.classes) {
    classes.push_back(absl::StrFormat("%s %gx%gx%g z %g (pos %g, neg %g)", a.name, a.l, a.w, a.h,
                                      a.z, a.pos_threshold, a.neg_threshold));
  }
  const TrainParams& t = c.train_params;
  const OptimizerConfig& o = c.optimizer;
  std::string out = absl::StrCat(file, ": OK\n");
  absl::StrAppendFormat(&out, "  %-12s %s\n", "name", c.name);
  absl::StrAppendFormat(&out, "  %-12s %d\n", "stage", c.stage);
  absl::StrAppendFormat(&out, "  %-12s %s\n", "model", model);
  absl::StrAppendFormat(&out, "  %-12s %d x %d pillars of %g x %g m, range [%s]\n", "grid",
                        v.grid_w(), v.grid_h(), v.voxel_size[0], v.voxel_size[1],
                        absl::StrJoin(v.lidar_range, ", "));
  absl::StrAppendFormat(&out, "  %-12s %d x %d (stride %d), %d channels per agent\n", "features",
                        v.grid_w() / backbone_stride, v.grid_h() / backbone_stride, backbone_stride,
                        m.backbone.num_filters.back());
  absl::StrAppendFormat(&out, "  %-12s %d per location = %d classes x yaws [%s] deg\n", "anchors",
                        m.anchor_number, static_cast<int>(c.postprocess.classes.size()),
                        absl::StrJoin(c.postprocess.yaws_deg, ", "));
  for (const std::string& cl : classes) absl::StrAppendFormat(&out, "  %-12s %s\n", "", cl);
  absl::StrAppendFormat(&out, "  %-12s score > %g, NMS IoU %g, top %d\n", "postprocess",
                        c.postprocess.score_threshold, c.postprocess.nms_thresh,
                        c.postprocess.max_num);
  absl::StrAppendFormat(&out,
                        "  %-12s batch %d, %d epochs, %s lr %g (eps %g, weight decay %g), "
                        "%s [%s] x %g, max %d agents within %g m\n",
                        "training", t.batch_size, t.epoches, o.core_method, o.lr, o.eps,
                        o.weight_decay, o.scheduler, absl::StrJoin(o.step_size, ", "), o.gamma,
                        t.max_cav, c.comm_range);
  absl::StrAppendFormat(&out, "  %-12s train %s, validate %s, test %s\n", "data", c.root_dir,
                        c.validate_dir, c.test_dir);
  return out;
}

absl::Status RunConfig(Args& args) {
  const std::vector<std::string>& pos = args.positional();
  if (pos.size() != 1 || pos[0] != "check") {
    return absl::InvalidArgumentError(
        "expected the subcommand `check` (qv2x config check --config FILE; see --help)");
  }
  QV2X_ASSIGN_OR_RETURN(std::string file, args.Required("config"));
  const std::vector<std::string> overrides = args.All("set");
  const bool json = args.Switch("json");
  QV2X_RETURN_IF_ERROR(args.Finish());
  QV2X_ASSIGN_OR_RETURN(StageConfig cfg, LoadStageConfig(file, overrides));
  if (json) {
    std::printf("%s\n", ToJson(cfg).dump(2).c_str());
  } else {
    std::printf("%s", Summary(file, cfg).c_str());
  }
  return absl::OkStatus();
}

const Registration kRegistration({
    "config",
    "validate a stage YAML and print a summary or its JSON",
    kUsage,
    RunConfig,
});

}  // namespace
}  // namespace qv2x::cli
