// Stage YAML -> StageConfig. Every key is required (the presets spell out every number of
// SPEC §3-§6), unknown keys are errors, and the cross-field rules run after parsing.
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/config/augment_config.h"
#include "core/config/model_config.h"
#include "core/config/yaml_reader.h"

namespace qv2x {

int VoxelConfig::grid_w() const {
  if (voxel_size[0] <= 0) return 0;
  return static_cast<int>(std::lround((lidar_range[3] - lidar_range[0]) / voxel_size[0]));
}

int VoxelConfig::grid_h() const {
  if (voxel_size[1] <= 0) return 0;
  return static_cast<int>(std::lround((lidar_range[4] - lidar_range[1]) / voxel_size[1]));
}

namespace {

constexpr int64_t kIntMax = std::numeric_limits<int>::max();

// --- typed reads that narrow to the struct's field types -------------------------------

absl::StatusOr<int> PosInt(YamlReader& r, const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(int64_t v, r.PositiveInt(key));
  if (v > kIntMax) {
    return r.Error(key, absl::StrCat("expected a positive integer below 2^31, got \"", v, "\""));
  }
  return static_cast<int>(v);
}

absl::StatusOr<int> NonNegInt(YamlReader& r, const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(int64_t v, r.NonNegativeInt(key));
  if (v > kIntMax) {
    return r.Error(key,
                   absl::StrCat("expected a non-negative integer below 2^31, got \"", v, "\""));
  }
  return static_cast<int>(v);
}

absl::StatusOr<std::vector<int>> PosInts(YamlReader& r, const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(std::vector<int64_t> v, r.Ints(key));
  std::vector<int> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] <= 0 || v[i] > kIntMax) {
      return absl::InvalidArgumentError(absl::StrCat(
          r.KeyPath(key), "[", i, "]: expected a positive integer, got \"", v[i], "\""));
    }
    out.push_back(static_cast<int>(v[i]));
  }
  return out;
}

absl::StatusOr<std::vector<double>> NonNegDoubles(YamlReader& r, const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(std::vector<double> v, r.Doubles(key));
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          r.KeyPath(key), "[", i, "]: expected a non-negative number, got \"", v[i], "\""));
    }
  }
  return v;
}

template <size_t N>
absl::StatusOr<std::array<double, N>> DoubleArray(YamlReader& r, const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(std::vector<double> v, r.Doubles(key, static_cast<int>(N)));
  std::array<double, N> out{};
  std::copy(v.begin(), v.end(), out.begin());
  return out;
}

// `[x0, y0, z0, x1, y1, z1]` with every minimum below its maximum.
absl::StatusOr<std::array<double, 6>> Range(YamlReader& r, const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(auto v, DoubleArray<6>(r, key));
  if (!(v[0] < v[3] && v[1] < v[4] && v[2] < v[5])) {
    return r.Error(key, absl::StrCat("expected [x0, y0, z0, x1, y1, z1] with x0 < x1, y0 < y1, "
                                     "z0 < z1, got [",
                                     absl::StrJoin(v, ", "), "]"));
  }
  return v;
}

// Data locations: a dataset folder or `sim:<scene.yaml>`.
absl::StatusOr<std::string> DataSource(YamlReader& r, const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(std::string v, r.String(key));
  if (v.empty() || v == "sim:") {
    return r.Error(key,
                   absl::StrCat("expected a dataset folder or sim:<scene.yaml>, got \"", v, "\""));
  }
  return v;
}

// An optional key with a default, one of `allowed` when present.
absl::StatusOr<std::string> OneOf(YamlReader& r, const std::string& key, const std::string& dflt,
                                  const std::vector<std::string>& allowed) {
  if (!r.Has(key)) return dflt;
  return r.Enum(key, allowed);
}

// --- sections ---------------------------------------------------------------------------

absl::Status ParseTrainParams(YamlReader& r, TrainParams* tp) {
  QV2X_ASSIGN_OR_RETURN(tp->batch_size, PosInt(r, "batch_size"));
  QV2X_ASSIGN_OR_RETURN(tp->epoches, PosInt(r, "epoches"));
  QV2X_ASSIGN_OR_RETURN(tp->eval_freq, PosInt(r, "eval_freq"));
  QV2X_ASSIGN_OR_RETURN(tp->save_freq, PosInt(r, "save_freq"));
  QV2X_ASSIGN_OR_RETURN(tp->max_cav, PosInt(r, "max_cav"));
  QV2X_ASSIGN_OR_RETURN(tp->seed, NonNegInt(r, "seed"));
  QV2X_ASSIGN_OR_RETURN(tp->train_frames, NonNegInt(r, "train_frames"));
  QV2X_ASSIGN_OR_RETURN(tp->val_frames, NonNegInt(r, "val_frames"));
  // Optional; read again by the trainer (augment_config.h), checked here with the rest.
  return ParseAugmentConfig(r).status();
}

absl::Status ParsePreprocess(YamlReader& r, VoxelConfig* v) {
  QV2X_RETURN_IF_ERROR(r.Enum("core_method", {"SpVoxelPreprocessor"}).status());
  QV2X_ASSIGN_OR_RETURN(v->lidar_range, Range(r, "cav_lidar_range"));
  QV2X_ASSIGN_OR_RETURN(v->use_intensity, r.Bool("use_intensity"));
  QV2X_ASSIGN_OR_RETURN(v->ego_body_box, DoubleArray<4>(r, "ego_body_box"));
  const auto& b = v->ego_body_box;
  if (!(b[0] < b[2] && b[1] < b[3])) {
    return r.Error("ego_body_box", absl::StrCat("expected [x0, y0, x1, y1] with x0 < x1 and "
                                                "y0 < y1, got [",
                                                absl::StrJoin(b, ", "), "]"));
  }
  QV2X_ASSIGN_OR_RETURN(YamlReader args, r.Map("args"));
  QV2X_ASSIGN_OR_RETURN(v->voxel_size, DoubleArray<3>(args, "voxel_size"));
  for (int i = 0; i < 3; ++i) {
    if (v->voxel_size[i] <= 0) {
      return args.Error("voxel_size", absl::StrCat("expected three positive sizes, got [",
                                                   absl::StrJoin(v->voxel_size, ", "), "]"));
    }
  }
  QV2X_ASSIGN_OR_RETURN(v->max_points_per_voxel, PosInt(args, "max_points_per_voxel"));
  QV2X_ASSIGN_OR_RETURN(v->max_voxel_train, PosInt(args, "max_voxel_train"));
  QV2X_ASSIGN_OR_RETURN(v->max_voxel_test, PosInt(args, "max_voxel_test"));
  return absl::OkStatus();
}

absl::Status ParseModel(YamlReader& r, ModelConfig* m) {
  QV2X_ASSIGN_OR_RETURN(m->core_method,
                        r.Enum("core_method", {kModelWithoutCodebook, kModelWithCodebook}));
  m->with_codebook = m->core_method == kModelWithCodebook;
  QV2X_ASSIGN_OR_RETURN(YamlReader args, r.Map("args"));

  QV2X_ASSIGN_OR_RETURN(YamlReader vfe, args.Map("pillar_vfe"));
  QV2X_ASSIGN_OR_RETURN(m->pillar_vfe.num_filters, PosInts(vfe, "num_filters"));
  QV2X_ASSIGN_OR_RETURN(m->pillar_vfe.bn_eps, vfe.PositiveDouble("bn_eps"));
  QV2X_ASSIGN_OR_RETURN(m->pillar_vfe.bn_momentum, vfe.DoubleInRange("bn_momentum", 0, 1));

  QV2X_ASSIGN_OR_RETURN(YamlReader bb, args.Map("backbone"));
  QV2X_ASSIGN_OR_RETURN(m->backbone.layer_nums, PosInts(bb, "layer_nums"));
  QV2X_ASSIGN_OR_RETURN(m->backbone.layer_strides, PosInts(bb, "layer_strides"));
  QV2X_ASSIGN_OR_RETURN(m->backbone.num_filters, PosInts(bb, "num_filters"));
  QV2X_ASSIGN_OR_RETURN(m->backbone.inplanes, PosInt(bb, "inplanes"));
  QV2X_ASSIGN_OR_RETURN(m->backbone.bn_eps, bb.PositiveDouble("bn_eps"));

  QV2X_ASSIGN_OR_RETURN(YamlReader fb, args.Map("fusion_backbone"));
  PyramidConfig& p = m->fusion_backbone;
  QV2X_ASSIGN_OR_RETURN(p.layer_nums, PosInts(fb, "layer_nums"));
  QV2X_ASSIGN_OR_RETURN(p.layer_strides, PosInts(fb, "layer_strides"));
  QV2X_ASSIGN_OR_RETURN(p.num_filters, PosInts(fb, "num_filters"));
  QV2X_ASSIGN_OR_RETURN(p.upsample_strides, PosInts(fb, "upsample_strides"));
  QV2X_ASSIGN_OR_RETURN(p.num_upsample_filters, PosInts(fb, "num_upsample_filters"));
  QV2X_ASSIGN_OR_RETURN(p.groups, PosInt(fb, "groups"));
  QV2X_ASSIGN_OR_RETURN(p.width_per_group, PosInt(fb, "width_per_group"));
  QV2X_ASSIGN_OR_RETURN(p.bn_eps, fb.PositiveDouble("bn_eps"));
  QV2X_ASSIGN_OR_RETURN(p.deconv_bn_eps, fb.PositiveDouble("deconv_bn_eps"));
  QV2X_ASSIGN_OR_RETURN(p.deconv_bn_momentum, fb.DoubleInRange("deconv_bn_momentum", 0, 1));

  QV2X_ASSIGN_OR_RETURN(YamlReader sh, args.Map("shrink_header"));
  QV2X_ASSIGN_OR_RETURN(m->shrink_header.input_dim, PosInt(sh, "input_dim"));
  QV2X_ASSIGN_OR_RETURN(m->shrink_header.dim, PosInt(sh, "dim"));
  QV2X_ASSIGN_OR_RETURN(m->shrink_header.kernel_size, PosInt(sh, "kernel_size"));
  QV2X_ASSIGN_OR_RETURN(m->shrink_header.stride, PosInt(sh, "stride"));
  QV2X_ASSIGN_OR_RETURN(m->shrink_header.padding, NonNegInt(sh, "padding"));

  if (m->with_codebook) {
    QV2X_ASSIGN_OR_RETURN(YamlReader cb, args.Map("codebook"));
    QV2X_ASSIGN_OR_RETURN(m->codebook.seg_num, PosInt(cb, "seg_num"));
    QV2X_ASSIGN_OR_RETURN(m->codebook.dict_size, PosInt(cb, "dict_size"));
    QV2X_ASSIGN_OR_RETURN(m->codebook.channel, PosInt(cb, "channel"));
    QV2X_ASSIGN_OR_RETURN(m->codebook.residual_levels, PosInt(cb, "residual_levels"));
    QV2X_ASSIGN_OR_RETURN(m->codebook.variant,
                          OneOf(cb, "variant", kCodebookQv2x, {kCodebookQv2x, kCodebookUmgm}));
  } else if (args.Has("codebook")) {
    return args.Error("codebook",
                      absl::StrCat("only ", kModelWithCodebook,
                                   " takes a codebook; model.core_method is ", m->core_method));
  }

  QV2X_ASSIGN_OR_RETURN(YamlReader dir, args.Map("dir_args"));
  QV2X_ASSIGN_OR_RETURN(m->dir_args.dir_offset, dir.Double("dir_offset"));
  QV2X_ASSIGN_OR_RETURN(m->dir_args.num_bins, PosInt(dir, "num_bins"));
  if (m->dir_args.num_bins < 2) {
    return dir.Error("num_bins", absl::StrCat("expected at least 2 direction bins, got \"",
                                              m->dir_args.num_bins, "\""));
  }
  QV2X_ASSIGN_OR_RETURN(m->anchor_number, PosInt(args, "anchor_number"));
  QV2X_ASSIGN_OR_RETURN(
      m->cls_head, OneOf(args, "cls_head", kClsHeadAnchor, {kClsHeadAnchor, kClsHeadClassVector}));
  return absl::OkStatus();
}

absl::Status ParsePostprocess(YamlReader& r, PostprocessConfig* pp) {
  QV2X_RETURN_IF_ERROR(r.Enum("core_method", {"VoxelPostprocessor"}).status());
  QV2X_ASSIGN_OR_RETURN(pp->gt_range, Range(r, "gt_range"));

  QV2X_ASSIGN_OR_RETURN(YamlReader anchors, r.Map("anchor_args"));
  QV2X_ASSIGN_OR_RETURN(pp->feature_stride, PosInt(anchors, "feature_stride"));
  QV2X_ASSIGN_OR_RETURN(pp->yaws_deg, anchors.Doubles("r"));
  std::set<double> yaws;
  for (size_t i = 0; i < pp->yaws_deg.size(); ++i) {
    const double y = pp->yaws_deg[i];
    // Anchors are symmetric under a half turn; the direction bins resolve the rest.
    if (y < 0 || y >= 180 || !yaws.insert(y).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(anchors.KeyPath("r"), "[", i,
                       "]: expected distinct yaws in [0, 180) degrees, got \"", y, "\""));
    }
  }
  QV2X_ASSIGN_OR_RETURN(std::vector<YamlReader> classes, anchors.MapList("classes"));
  std::set<std::string> names;
  for (YamlReader& c : classes) {
    AnchorClassConfig a;
    QV2X_ASSIGN_OR_RETURN(a.name, c.Enum("name", {"vehicle", "pedestrian", "truck"}));
    if (!names.insert(a.name).second) {
      return c.Error("name", absl::StrCat("class \"", a.name, "\" is listed twice"));
    }
    QV2X_ASSIGN_OR_RETURN(a.l, c.PositiveDouble("l"));
    QV2X_ASSIGN_OR_RETURN(a.w, c.PositiveDouble("w"));
    QV2X_ASSIGN_OR_RETURN(a.h, c.PositiveDouble("h"));
    QV2X_ASSIGN_OR_RETURN(a.z, c.Double("z"));
    QV2X_ASSIGN_OR_RETURN(a.pos_threshold, c.DoubleInRange("pos_threshold", 0, 1));
    QV2X_ASSIGN_OR_RETURN(a.neg_threshold, c.DoubleInRange("neg_threshold", 0, 1));
    if (a.neg_threshold > a.pos_threshold) {
      return c.Error("neg_threshold",
                     absl::StrCat("must not exceed pos_threshold (", a.pos_threshold, "), got \"",
                                  a.neg_threshold, "\""));
    }
    pp->classes.push_back(a);
  }

  QV2X_ASSIGN_OR_RETURN(YamlReader target, r.Map("target_args"));
  QV2X_ASSIGN_OR_RETURN(pp->score_threshold, target.DoubleInRange("score_threshold", 0, 1));
  QV2X_ASSIGN_OR_RETURN(pp->nms_thresh, r.DoubleInRange("nms_thresh", 0, 1));
  QV2X_ASSIGN_OR_RETURN(pp->max_num, PosInt(r, "max_num"));
  return absl::OkStatus();
}

absl::Status ParseLoss(YamlReader& r, LossConfig* l) {
  QV2X_RETURN_IF_ERROR(r.Enum("core_method", {"point_pillar_pyramid_loss"}).status());
  QV2X_ASSIGN_OR_RETURN(YamlReader args, r.Map("args"));
  QV2X_ASSIGN_OR_RETURN(YamlReader cls, args.Map("cls"));
  QV2X_ASSIGN_OR_RETURN(l->cls_alpha, cls.DoubleInRange("alpha", 0, 1));
  QV2X_ASSIGN_OR_RETURN(l->cls_gamma, cls.NonNegativeDouble("gamma"));
  QV2X_ASSIGN_OR_RETURN(l->cls_weight, cls.NonNegativeDouble("weight"));
  QV2X_ASSIGN_OR_RETURN(YamlReader reg, args.Map("reg"));
  QV2X_ASSIGN_OR_RETURN(l->reg_beta, reg.PositiveDouble("beta"));
  QV2X_ASSIGN_OR_RETURN(l->reg_weight, reg.NonNegativeDouble("weight"));
  QV2X_ASSIGN_OR_RETURN(YamlReader dir, args.Map("dir"));
  QV2X_ASSIGN_OR_RETURN(l->dir_weight, dir.NonNegativeDouble("weight"));
  QV2X_ASSIGN_OR_RETURN(YamlReader pyramid, args.Map("pyramid"));
  QV2X_ASSIGN_OR_RETURN(l->pyramid_weights, NonNegDoubles(pyramid, "weights"));
  QV2X_ASSIGN_OR_RETURN(l->codebook_weight, args.NonNegativeDouble("codebook_weight"));
  return absl::OkStatus();
}

absl::Status ParseOptimizer(YamlReader& opt, YamlReader& sched, OptimizerConfig* o) {
  QV2X_ASSIGN_OR_RETURN(o->core_method, opt.Enum("core_method", {"Adam"}));
  QV2X_ASSIGN_OR_RETURN(o->lr, opt.PositiveDouble("lr"));
  QV2X_ASSIGN_OR_RETURN(YamlReader args, opt.Map("args"));
  QV2X_ASSIGN_OR_RETURN(o->eps, args.PositiveDouble("eps"));
  QV2X_ASSIGN_OR_RETURN(o->weight_decay, args.NonNegativeDouble("weight_decay"));

  QV2X_ASSIGN_OR_RETURN(o->scheduler, sched.Enum("core_method", {"multistep"}));
  QV2X_ASSIGN_OR_RETURN(o->gamma, sched.DoubleInRange("gamma", 0, 1));
  if (o->gamma == 0) {
    return sched.Error("gamma", "expected a factor in (0, 1], got \"0\"");
  }
  QV2X_ASSIGN_OR_RETURN(o->step_size, PosInts(sched, "step_size"));
  for (size_t i = 1; i < o->step_size.size(); ++i) {
    if (o->step_size[i] <= o->step_size[i - 1]) {
      return sched.Error("step_size", absl::StrCat("expected increasing epochs, got [",
                                                   absl::StrJoin(o->step_size, ", "), "]"));
    }
  }
  return absl::OkStatus();
}

// --- cross-field rules --------------------------------------------------------------------

absl::Status Invalid(const std::string& key, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", what));
}

std::string List(const std::vector<int>& v) {
  return absl::StrCat("[", absl::StrJoin(v, ", "), "]");
}

int Product(const std::vector<int>& v) {
  return std::accumulate(v.begin(), v.end(), 1, [](int a, int b) { return a * b; });
}

// True when `extent / step` is a whole number (to 1e-6 of a cell).
bool Divides(double extent, double step) {
  const double cells = extent / step;
  return std::abs(cells - std::round(cells)) < 1e-6 && std::round(cells) >= 1;
}

absl::Status ValidateVoxel(const VoxelConfig& v) {
  const auto& r = v.lidar_range;
  const std::string range_key = "preprocess.cav_lidar_range";
  // The warp of SPEC §5 maps the grid centre to the sensor, so the range must be centred.
  if (r[0] != -r[3] || r[1] != -r[4]) {
    return Invalid(range_key, absl::StrCat("must be symmetric about the sensor in x and y "
                                           "(x0 = -x1, y0 = -y1), got [",
                                           absl::StrJoin(r, ", "), "]"));
  }
  const char* axis[3] = {"x", "y", "z"};
  for (int i = 0; i < 3; ++i) {
    if (!Divides(r[i + 3] - r[i], v.voxel_size[i])) {
      return Invalid(range_key, absl::StrCat("the ", axis[i], " extent ", r[i + 3] - r[i],
                                             " m is not a whole number of voxels of ",
                                             v.voxel_size[i], " m (preprocess.args.voxel_size)"));
    }
  }
  if (std::lround((r[5] - r[2]) / v.voxel_size[2]) != 1) {
    return Invalid("preprocess.args.voxel_size",
                   absl::StrCat("a pillar spans the whole z range: voxel_size[2] must be ",
                                r[5] - r[2], ", got ", v.voxel_size[2]));
  }
  return absl::OkStatus();
}

absl::Status ValidateModel(const StageConfig& cfg) {
  const ModelConfig& m = cfg.model;
  const std::string args = "model.args.";
  // Stage 1 trains the plain model; stages 2 and 3 train and fine-tune the codebook.
  const char* want = cfg.stage == 1 ? kModelWithoutCodebook : kModelWithCodebook;
  if (m.core_method != want) {
    return Invalid("model.core_method", absl::StrCat("stage ", cfg.stage, " expects ", want,
                                                     ", got \"", m.core_method, "\""));
  }
  if (m.with_codebook != (m.core_method == kModelWithCodebook)) {
    return Invalid("model.core_method", "disagrees with the model's with_codebook flag");
  }
  if (m.pillar_vfe.num_filters.empty()) {
    return Invalid(args + "pillar_vfe.num_filters", "expected at least one PFN layer");
  }
  if (m.backbone.inplanes != m.pillar_vfe.num_filters.back()) {
    return Invalid(args + "backbone.inplanes",
                   absl::StrCat("must equal the pillar encoder's output channels (pillar_vfe."
                                "num_filters[-1] = ",
                                m.pillar_vfe.num_filters.back(), "), got ", m.backbone.inplanes));
  }
  const BackboneConfig& b = m.backbone;
  if (b.layer_nums.empty() || b.layer_strides.size() != b.layer_nums.size() ||
      b.num_filters.size() != b.layer_nums.size()) {
    return Invalid(
        args + "backbone",
        absl::StrCat("layer_nums, layer_strides and num_filters need one entry per "
                     "level, got ",
                     List(b.layer_nums), ", ", List(b.layer_strides), ", ", List(b.num_filters)));
  }
  const PyramidConfig& p = m.fusion_backbone;
  const size_t levels = p.layer_nums.size();
  if (levels == 0 || p.layer_strides.size() != levels || p.num_filters.size() != levels ||
      p.upsample_strides.size() != levels || p.num_upsample_filters.size() != levels) {
    return Invalid(
        args + "fusion_backbone",
        absl::StrCat("layer_nums, layer_strides, num_filters, upsample_strides and "
                     "num_upsample_filters need one entry per level, got ",
                     List(p.layer_nums), ", ", List(p.layer_strides), ", ", List(p.num_filters),
                     ", ", List(p.upsample_strides), ", ", List(p.num_upsample_filters)));
  }
  // ResNeXt inner width = floor(planes * width_per_group / 64) * groups; it must be exact
  // and non-zero so that the grouped 3x3 splits evenly.
  for (size_t i = 0; i < levels; ++i) {
    const int64_t scaled = static_cast<int64_t>(p.num_filters[i]) * p.width_per_group;
    if (scaled % 64 != 0) {
      return Invalid(
          args + "fusion_backbone.width_per_group",
          absl::StrCat("level ", i, ": num_filters ", p.num_filters[i], " x ", "width_per_group ",
                       p.width_per_group, " is not a multiple of 64, so the inner width ",
                       "(groups x width_per_group x planes / 64) does not split into ", p.groups,
                       " groups"));
    }
  }
  // Every level is decoded back to the backbone's resolution.
  int cumulative = 1;
  for (size_t i = 0; i < levels; ++i) {
    cumulative *= p.layer_strides[i];
    if (p.upsample_strides[i] != cumulative) {
      return Invalid(args + "fusion_backbone.upsample_strides",
                     absl::StrCat("level ", i, " sits at stride ", cumulative,
                                  " (product of layer_strides) but is decoded by ",
                                  p.upsample_strides[i], "; got ", List(p.upsample_strides)));
    }
  }
  const int backbone_stride = Product(b.layer_strides);
  const int total_stride = backbone_stride * cumulative;
  const int gw = cfg.preprocess.grid_w(), gh = cfg.preprocess.grid_h();
  if (gw % total_stride != 0 || gh % total_stride != 0) {
    return Invalid(
        "preprocess.cav_lidar_range",
        absl::StrCat("the ", gw, " x ", gh, " pillar grid must be divisible by the ",
                     "total stride ", total_stride, " (backbone x fusion_backbone layer_strides)"));
  }
  const int fused =
      std::accumulate(p.num_upsample_filters.begin(), p.num_upsample_filters.end(), 0);
  const ShrinkConfig& s = m.shrink_header;
  if (s.input_dim != fused) {
    return Invalid(args + "shrink_header.input_dim",
                   absl::StrCat("must equal sum(fusion_backbone.num_upsample_filters) = ", fused,
                                ", got ", s.input_dim));
  }
  if (s.stride != 1 || s.kernel_size % 2 == 0 || 2 * s.padding + 1 != s.kernel_size) {
    return Invalid(args + "shrink_header",
                   absl::StrCat("must keep the map size for the heads (odd kernel_size, padding "
                                "= kernel_size / 2, stride 1), got kernel_size ",
                                s.kernel_size, ", padding ", s.padding, ", stride ", s.stride));
  }
  if (m.with_codebook) {
    const CodebookConfig& c = m.codebook;
    const int agent_channels = b.num_filters.back();
    if (c.channel != agent_channels) {
      return Invalid(args + "codebook.channel",
                     absl::StrCat("must equal the backbone's output channels "
                                  "(backbone.num_filters[-1] = ",
                                  agent_channels, "), got ", c.channel));
    }
    if (c.channel % c.seg_num != 0) {
      return Invalid(
          args + "codebook.seg_num",
          absl::StrCat("channel ", c.channel, " is not divisible by seg_num ", c.seg_num));
    }
    if (c.dict_size < 2) {
      return Invalid(args + "codebook.dict_size",
                     absl::StrCat("expected at least 2 codewords, got ", c.dict_size));
    }
  }
  const int want_anchors =
      static_cast<int>(cfg.postprocess.classes.size() * cfg.postprocess.yaws_deg.size());
  if (m.anchor_number != want_anchors) {
    return Invalid(args + "anchor_number",
                   absl::StrCat("must equal len(postprocess.anchor_args.classes) x "
                                "len(postprocess.anchor_args.r) = ",
                                want_anchors, ", got ", m.anchor_number));
  }
  if (cfg.postprocess.feature_stride != backbone_stride) {
    return Invalid("postprocess.anchor_args.feature_stride",
                   absl::StrCat("must equal the head's stride on the pillar grid (product of "
                                "model.args.backbone.layer_strides = ",
                                backbone_stride, "), got ", cfg.postprocess.feature_stride));
  }
  if (cfg.loss.pyramid_weights.size() != levels) {
    return Invalid("loss.args.pyramid.weights",
                   absl::StrCat("expected one weight per fusion_backbone level (", levels,
                                "), got ", cfg.loss.pyramid_weights.size()));
  }
  return absl::OkStatus();
}

absl::StatusOr<StageConfig> Parse(const YAML::Node& root, std::string source) {
  YamlReader r(root, "");
  StageConfig cfg;
  QV2X_ASSIGN_OR_RETURN(cfg.name, r.String("name"));
  QV2X_ASSIGN_OR_RETURN(int64_t stage, r.IntInRange("stage", 1, 3));
  cfg.stage = static_cast<int>(stage);
  QV2X_ASSIGN_OR_RETURN(cfg.root_dir, DataSource(r, "root_dir"));
  QV2X_ASSIGN_OR_RETURN(cfg.validate_dir, DataSource(r, "validate_dir"));
  QV2X_ASSIGN_OR_RETURN(cfg.test_dir, DataSource(r, "test_dir"));
  QV2X_ASSIGN_OR_RETURN(cfg.dataset_mode,
                        OneOf(r, "dataset_mode", "vc", {"vc", "v2v", "ic", "i2i"}));
  QV2X_ASSIGN_OR_RETURN(cfg.missing_agent, OneOf(r, "missing_agent", "skip", {"skip", "stop"}));
  QV2X_ASSIGN_OR_RETURN(cfg.comm_range, r.PositiveDouble("comm_range"));
  QV2X_ASSIGN_OR_RETURN(cfg.num_class, PosInt(r, "num_class"));

  QV2X_ASSIGN_OR_RETURN(YamlReader tp, r.Map("train_params"));
  QV2X_RETURN_IF_ERROR(ParseTrainParams(tp, &cfg.train_params));
  QV2X_ASSIGN_OR_RETURN(YamlReader pre, r.Map("preprocess"));
  QV2X_RETURN_IF_ERROR(ParsePreprocess(pre, &cfg.preprocess));
  QV2X_ASSIGN_OR_RETURN(YamlReader model, r.Map("model"));
  QV2X_RETURN_IF_ERROR(ParseModel(model, &cfg.model));
  QV2X_ASSIGN_OR_RETURN(YamlReader post, r.Map("postprocess"));
  QV2X_RETURN_IF_ERROR(ParsePostprocess(post, &cfg.postprocess));
  QV2X_ASSIGN_OR_RETURN(YamlReader loss, r.Map("loss"));
  QV2X_RETURN_IF_ERROR(ParseLoss(loss, &cfg.loss));
  QV2X_ASSIGN_OR_RETURN(YamlReader opt, r.Map("optimizer"));
  QV2X_ASSIGN_OR_RETURN(YamlReader sched, r.Map("lr_scheduler"));
  QV2X_RETURN_IF_ERROR(ParseOptimizer(opt, sched, &cfg.optimizer));

  QV2X_RETURN_IF_ERROR(r.Finish());
  QV2X_RETURN_IF_ERROR(ValidateStageConfig(cfg));
  cfg.source_yaml = std::move(source);
  return cfg;
}

std::string Emit(const YAML::Node& root) {
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

absl::StatusOr<YAML::Node> LoadYaml(const std::string& text, const std::string& origin) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
}

absl::Status CheckRoot(const YAML::Node& root, const std::string& origin) {
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": expected a mapping of stage keys at the top of the document"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateStageConfig(const StageConfig& cfg) {
  if (cfg.stage < 1 || cfg.stage > 3) {
    return Invalid("stage", absl::StrCat("expected 1, 2 or 3, got ", cfg.stage));
  }
  QV2X_RETURN_IF_ERROR(ValidateVoxel(cfg.preprocess));
  if (cfg.postprocess.classes.empty()) {
    return Invalid("postprocess.anchor_args.classes", "expected at least one class");
  }
  if (cfg.num_class != static_cast<int>(cfg.postprocess.classes.size())) {
    return Invalid("num_class",
                   absl::StrCat("must equal len(postprocess.anchor_args.classes) = ",
                                cfg.postprocess.classes.size(), ", got ", cfg.num_class));
  }
  return ValidateModel(cfg);
}

absl::StatusOr<StageConfig> ParseStageConfig(const YAML::Node& root) {
  QV2X_RETURN_IF_ERROR(CheckRoot(root, "<yaml>"));
  return Parse(root, Emit(root));
}

absl::StatusOr<StageConfig> ParseStageConfigString(const std::string& yaml_text) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(yaml_text, "<yaml>"));
  QV2X_RETURN_IF_ERROR(CheckRoot(root, "<yaml>"));
  return Parse(root, yaml_text);
}

absl::StatusOr<StageConfig> LoadStageConfig(const std::string& file,
                                            const std::vector<std::string>& overrides) {
  QV2X_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  QV2X_ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(text, file));
  QV2X_RETURN_IF_ERROR(CheckRoot(root, file));
  for (const std::string& o : overrides) QV2X_RETURN_IF_ERROR(ApplyOverride(root, o));
  // Without overrides the file's own text (comments included) travels in checkpoints.
  return Parse(root, overrides.empty() ? text : Emit(root));
}

}  // namespace qv2x
