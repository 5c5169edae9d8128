#include "core/model/model_validation.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace qv2x {
namespace {

constexpr char kArgs[] = "model.args.";

absl::Status Bad(const std::string& key, const std::string& expected, const std::string& got) {
  return absl::InvalidArgumentError(
      absl::StrCat(kArgs, key, ": expected ", expected, ", got ", got));
}

std::string List(const std::vector<int>& v) {
  return absl::StrCat("[", absl::StrJoin(v, ", "), "]");
}

absl::Status AllPositive(const std::string& key, const std::vector<int>& v) {
  if (v.empty()) return Bad(key, "a non-empty list", "[]");
  for (int x : v) {
    if (x <= 0) return Bad(key, "positive integers", List(v));
  }
  return absl::OkStatus();
}

absl::Status SameLength(const std::string& key, const std::vector<int>& v,
                        const std::string& ref_key, size_t n) {
  if (v.size() != n) {
    return Bad(key, absl::StrCat(n, " entries (as ", ref_key, ")"), List(v));
  }
  return absl::OkStatus();
}

int64_t Extent(double lo, double hi, double size) {
  return size > 0 && hi > lo ? std::lround((hi - lo) / size) : 0;
}

}  // namespace

absl::Status ValidateModelConfig(const StageConfig& cfg) {
  const ModelConfig& m = cfg.model;
  if (absl::Status s = AllPositive("pillar_vfe.num_filters", m.pillar_vfe.num_filters); !s.ok()) {
    return s;
  }
  const int vfe_out = m.pillar_vfe.num_filters.back();

  const BackboneConfig& b = m.backbone;
  for (auto [key, v] : {std::pair{"backbone.layer_nums", &b.layer_nums},
                        std::pair{"backbone.layer_strides", &b.layer_strides},
                        std::pair{"backbone.num_filters", &b.num_filters}}) {
    if (absl::Status s = AllPositive(key, *v); !s.ok()) return s;
    if (absl::Status s = SameLength(key, *v, "backbone.layer_nums", b.layer_nums.size()); !s.ok()) {
      return s;
    }
  }
  if (b.inplanes != vfe_out) {
    return Bad("backbone.inplanes", absl::StrCat(vfe_out, " (the last pillar_vfe.num_filters)"),
               std::to_string(b.inplanes));
  }
  for (size_t i = 1; i < b.layer_strides.size(); ++i) {
    // Levels are concatenated without decoders, so they must share one resolution.
    if (b.layer_strides[i] != 1) {
      return Bad("backbone.layer_strides", "1 after the first level", List(b.layer_strides));
    }
  }
  int backbone_out = 0;
  for (int f : b.num_filters) backbone_out += f;

  const PyramidConfig& p = m.fusion_backbone;
  const size_t levels = p.layer_nums.size();
  for (auto [key, v] :
       {std::pair{"fusion_backbone.layer_nums", &p.layer_nums},
        std::pair{"fusion_backbone.layer_strides", &p.layer_strides},
        std::pair{"fusion_backbone.num_filters", &p.num_filters},
        std::pair{"fusion_backbone.upsample_strides", &p.upsample_strides},
        std::pair{"fusion_backbone.num_upsample_filters", &p.num_upsample_filters}}) {
    if (absl::Status s = AllPositive(key, *v); !s.ok()) return s;
    if (absl::Status s = SameLength(key, *v, "fusion_backbone.layer_nums", levels); !s.ok())
      return s;
  }
  if (p.groups <= 0)
    return Bad("fusion_backbone.groups", "a positive integer", std::to_string(p.groups));
  if (p.width_per_group <= 0) {
    return Bad("fusion_backbone.width_per_group", "a positive integer",
               std::to_string(p.width_per_group));
  }
  // Every decoded level must come back to the first level's resolution.
  int64_t down = 1;
  for (size_t i = 0; i < levels; ++i) {
    down *= p.layer_strides[i];
    if (down / p.layer_strides[0] != p.upsample_strides[i] || down % p.layer_strides[0] != 0) {
      return Bad("fusion_backbone.upsample_strides",
                 absl::StrCat("the cumulative layer_strides relative to level 0 at level ", i),
                 List(p.upsample_strides));
    }
  }
  int fused = 0;
  for (int f : p.num_upsample_filters) fused += f;

  const ShrinkConfig& s = m.shrink_header;
  if (s.input_dim != fused) {
    return Bad("shrink_header.input_dim",
               absl::StrCat(fused, " (sum of fusion_backbone.num_upsample_filters)"),
               std::to_string(s.input_dim));
  }
  if (s.dim <= 0) return Bad("shrink_header.dim", "a positive integer", std::to_string(s.dim));
  if (s.kernel_size <= 0 || s.stride <= 0 || s.padding < 0) {
    return Bad("shrink_header", "positive kernel_size and stride, padding >= 0",
               absl::StrCat(s.kernel_size, ", ", s.stride, ", ", s.padding));
  }

  if (m.with_codebook) {
    const CodebookConfig& c = m.codebook;
    if (c.channel != backbone_out) {
      return Bad("codebook.channel",
                 absl::StrCat(backbone_out, " (the backbone's output channels)"),
                 std::to_string(c.channel));
    }
    if (c.seg_num <= 0 || c.channel % c.seg_num != 0) {
      return Bad("codebook.seg_num", absl::StrCat("a divisor of codebook.channel ", c.channel),
                 std::to_string(c.seg_num));
    }
    if (c.dict_size < 2 || c.dict_size > 65536) {
      return Bad("codebook.dict_size", "an integer in [2, 65536]", std::to_string(c.dict_size));
    }
    if (c.residual_levels <= 0) {
      return Bad("codebook.residual_levels", "a positive integer",
                 std::to_string(c.residual_levels));
    }
  }
  if (m.anchor_number <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.args.anchor_number: expected a positive integer, got ", m.anchor_number));
  }
  const size_t anchors = cfg.postprocess.classes.size() * cfg.postprocess.yaws_deg.size();
  if (anchors != 0 && anchors != static_cast<size_t>(m.anchor_number)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.args.anchor_number: expected ", anchors,
                     " (postprocess.anchor_args classes × yaws), got ", m.anchor_number));
  }
  if (m.dir_args.num_bins <= 0) {
    return Bad("dir_args.num_bins", "a positive integer", std::to_string(m.dir_args.num_bins));
  }
  // Decoded levels are concatenated: the backbone map must divide by the pyramid's total
  // downsampling.
  absl::StatusOr<BevGeometry> g = ComputeBevGeometry(cfg);
  if (!g.ok()) return g.status();
  if (g->feature_h % down != 0 || g->feature_w % down != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("preprocess.cav_lidar_range: the ", g->feature_h, " x ", g->feature_w,
                     " backbone map does not divide by the pyramid's total stride ", down));
  }
  return absl::OkStatus();
}

absl::StatusOr<BevGeometry> ComputeBevGeometry(const StageConfig& cfg) {
  const auto& r = cfg.preprocess.lidar_range;
  const auto& v = cfg.preprocess.voxel_size;
  BevGeometry g;
  g.pillar_w = Extent(r[0], r[3], v[0]);
  g.pillar_h = Extent(r[1], r[4], v[1]);
  if (g.pillar_w <= 0 || g.pillar_h <= 0) {
    return absl::InvalidArgumentError(
        "preprocess.cav_lidar_range / voxel_size: the pillar grid is empty");
  }
  g.backbone_stride =
      cfg.model.backbone.layer_strides.empty() ? 1 : cfg.model.backbone.layer_strides[0];
  // A stride-s 3x3 conv with padding 1 gives ceil(n / s).
  g.feature_h = (g.pillar_h + g.backbone_stride - 1) / g.backbone_stride;
  g.feature_w = (g.pillar_w + g.backbone_stride - 1) / g.backbone_stride;
  return g;
}

}  // namespace qv2x
