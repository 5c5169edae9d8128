#include "core/model/model_cost.h"

#include "core/model/model_validation.h"

namespace qv2x {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Conv MACs: out_channels × in_channels/groups × k² per output cell.
int64_t Conv(int64_t in, int64_t out, int64_t k, int64_t cells, int64_t groups = 1) {
  return out * (in / groups) * k * k * cells;
}

}  // namespace

absl::StatusOr<ModelCost> EstimateModelCost(const StageConfig& cfg) {
  if (absl::Status s = ValidateModelConfig(cfg); !s.ok()) return s;
  absl::StatusOr<BevGeometry> g = ComputeBevGeometry(cfg);
  if (!g.ok()) return g.status();
  const ModelConfig& m = cfg.model;
  ModelCost c;

  // PFN layers: a non-final layer has half its width and doubles it by concatenation.
  int64_t in = 10;
  for (size_t i = 0; i < m.pillar_vfe.num_filters.size(); ++i) {
    const bool last = i + 1 == m.pillar_vfe.num_filters.size();
    const int64_t units = last ? m.pillar_vfe.num_filters[i] : m.pillar_vfe.num_filters[i] / 2;
    c.vfe_per_pillar += in * units * cfg.preprocess.max_points_per_voxel;
    in = m.pillar_vfe.num_filters[i];
  }

  int64_t h = g->pillar_h, w = g->pillar_w, planes_in = m.backbone.inplanes;
  for (size_t l = 0; l < m.backbone.layer_nums.size(); ++l) {
    const int64_t planes = m.backbone.num_filters[l], stride = m.backbone.layer_strides[l];
    h = CeilDiv(h, stride);
    w = CeilDiv(w, stride);
    for (int b = 0; b < m.backbone.layer_nums[l]; ++b) {
      const int64_t block_in = b == 0 ? planes_in : planes;
      c.backbone_per_agent += Conv(block_in, planes, 3, h * w) + Conv(planes, planes, 3, h * w);
      if (b == 0 && (stride != 1 || block_in != planes))
        c.backbone_per_agent += Conv(block_in, planes, 1, h * w);
    }
    planes_in = planes;
  }
  h = g->feature_h;
  w = g->feature_w;
  int64_t channels = 0;
  for (int f : m.backbone.num_filters) channels += f;
  if (m.with_codebook) {
    c.codebook_per_agent =
        static_cast<int64_t>(m.codebook.residual_levels) * m.codebook.dict_size * channels * h * w;
    if (m.codebook.variant == kCodebookUmgm) {
      // Per level three encoder heads and three decoder heads, Linear(C, C) per cell (the
      // last level has no latent and no side head).
      const int64_t heads = 6 * m.codebook.residual_levels - 2;
      c.codebook_per_agent += heads * channels * channels * h * w;
    }
  }

  const PyramidConfig& p = m.fusion_backbone;
  const int64_t out_h = h, out_w = w;
  int64_t level_in = channels;
  for (size_t l = 0; l < p.layer_nums.size(); ++l) {
    const int64_t planes = p.num_filters[l], stride = p.layer_strides[l];
    const int64_t width = planes * p.width_per_group / 64 * p.groups;
    for (int b = 0; b < p.layer_nums[l]; ++b) {
      const int64_t s = b == 0 ? stride : 1;
      const int64_t block_in = b == 0 ? level_in : planes;
      const int64_t oh = CeilDiv(h, s), ow = CeilDiv(w, s);
      c.pyramid_per_agent += Conv(block_in, width, 1, h * w) +
                             Conv(width, width, 3, oh * ow, p.groups) +
                             Conv(width, planes, 1, oh * ow);
      if (b == 0 && (stride != 1 || block_in != planes)) {
        c.pyramid_per_agent += Conv(block_in, planes, 1, oh * ow);
      }
      h = oh;
      w = ow;
    }
    c.pyramid_per_agent += Conv(planes, 1, 1, h * w);  // occupancy head
    const int64_t up = p.upsample_strides[l];
    c.decoders_per_frame += planes * p.num_upsample_filters[l] * up * up * h * w;
    level_in = planes;
  }

  const ShrinkConfig& s = m.shrink_header;
  const int64_t sh = (out_h + 2 * s.padding - s.kernel_size) / s.stride + 1;
  const int64_t sw = (out_w + 2 * s.padding - s.kernel_size) / s.stride + 1;
  c.shrink_per_frame =
      Conv(s.input_dim, s.dim, s.kernel_size, sh * sw) + Conv(s.dim, s.dim, 3, sh * sw);
  c.heads_per_frame =
      (ClsHeadChannels(cfg) + static_cast<int64_t>(m.anchor_number) * (7 + m.dir_args.num_bins)) *
      s.dim * sh * sw;
  return c;
}

}  // namespace qv2x
