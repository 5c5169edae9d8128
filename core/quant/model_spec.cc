#include "core/quant/model_spec.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"

namespace qv2x::quant {
namespace {

LayerSpec Conv(std::string name, std::string bn, int64_t in, int64_t out, int64_t k, int64_t stride,
               int64_t groups, bool relu, double eps) {
  LayerSpec l;
  l.name = std::move(name);
  l.bn = std::move(bn);
  l.kind = LayerKind::kConv;
  l.in = in;
  l.out = out;
  l.kernel = k;
  l.stride = stride;
  l.padding = k / 2;
  l.groups = groups;
  l.relu = relu;
  l.bn_eps = eps;
  return l;
}

// Mirrors ResNetTrunkImpl (core/model/resnet.cc): block b of level l has the level's
// stride when b == 0, and a 1x1 shortcut when the shape changes there.
std::vector<std::vector<BlockSpec>> ResidualLevels(const std::string& prefix, bool bottleneck,
                                                   const std::vector<int>& layer_nums,
                                                   const std::vector<int>& strides,
                                                   const std::vector<int>& filters,
                                                   int64_t inplanes, int64_t groups,
                                                   int64_t width_per_group, double eps) {
  std::vector<std::vector<BlockSpec>> levels;
  for (size_t level = 0; level < layer_nums.size(); ++level) {
    std::vector<BlockSpec> blocks;
    const int64_t planes = filters[level];
    for (int b = 0; b < layer_nums[level]; ++b) {
      const int64_t s = b == 0 ? strides[level] : 1;
      const bool down = b == 0 && (s != 1 || inplanes != planes);
      const std::string p = absl::StrCat(prefix, ".layer", level, ".", b);
      BlockSpec block;
      block.name = p;
      block.kind = BlockKind::kResidual;
      if (bottleneck) {
        const int64_t width = planes * width_per_group / 64 * groups;
        block.layers = {Conv(p + ".conv1", p + ".bn1", inplanes, width, 1, 1, 1, true, eps),
                        Conv(p + ".conv2", p + ".bn2", width, width, 3, s, groups, true, eps),
                        Conv(p + ".conv3", p + ".bn3", width, planes, 1, 1, 1, false, eps)};
        block.layer_acts = {p + ".conv1", p + ".conv2", p + ".conv3"};
      } else {
        block.layers = {Conv(p + ".conv1", p + ".bn1", inplanes, planes, 3, s, 1, true, eps),
                        Conv(p + ".conv2", p + ".bn2", planes, planes, 3, 1, 1, false, eps)};
        block.layer_acts = {p + ".conv1", p + ".conv2"};
      }
      if (down) {
        block.shortcut =
            Conv(p + ".downsample.0", p + ".downsample.1", inplanes, planes, 1, s, 1, false, eps);
        block.shortcut_act = p + ".downsample";
      }
      block.output_act = p + ".out";
      blocks.push_back(std::move(block));
      inplanes = planes;
    }
    levels.push_back(std::move(blocks));
  }
  return levels;
}

}  // namespace

int64_t BlockSpec::stride() const {
  int64_t s = 1;
  for (const LayerSpec& l : layers) {
    if (l.kind == LayerKind::kConv) s *= l.stride;
  }
  return s;
}

absl::Status CheckInt8Coverage(const StageConfig& cfg) {
  if (cfg.model.with_codebook && cfg.model.codebook.variant == kCodebookUmgm) {
    return absl::UnimplementedError(
        absl::StrCat(cfg.name,
                     ": INT8 models with the umgm codebook variant are not supported "
                     "(its Linear heads have no place in the INT8 artifact format); "
                     "run this model in FP32"));
  }
  return absl::OkStatus();
}

ModelSpec MakeModelSpec(const StageConfig& cfg) {
  const ModelConfig& m = cfg.model;
  ModelSpec spec;
  spec.codebook = m.with_codebook ? "codebook" : "";

  // Agent: one PFN layer (every preset has one), then the BEV backbone.
  BlockSpec pfn;
  pfn.name = "encoder_m1.pillar_vfe.pfn_layers.0";
  pfn.kind = BlockKind::kPfn;
  LayerSpec linear;
  linear.name = pfn.name + ".linear";
  linear.bn = pfn.name + ".norm";
  linear.kind = LayerKind::kLinear;
  linear.in = kPfnInputs;
  linear.out = m.pillar_vfe.num_filters.empty() ? 0 : m.pillar_vfe.num_filters.back();
  linear.relu = true;
  linear.bn_eps = m.pillar_vfe.bn_eps;
  pfn.layers = {linear};
  pfn.input_act = "encoder_m1.input";
  pfn.layer_acts = {""};
  pfn.output_act = "encoder_m1.output";
  spec.agent.push_back(pfn);
  const BackboneConfig& bb = m.backbone;
  for (auto& level : ResidualLevels("backbone_m1.resnet", false, bb.layer_nums, bb.layer_strides,
                                    bb.num_filters, linear.out, 1, 64, bb.bn_eps)) {
    for (BlockSpec& b : level) spec.agent.push_back(std::move(b));
  }

  // Ego: pyramid trunk, FP32 occupancy heads, decoders, shrink header, heads.
  const PyramidConfig& p = m.fusion_backbone;
  int64_t agent_channels = 0;
  for (int f : bb.num_filters) agent_channels += f;
  spec.trunk = ResidualLevels("pyramid_backbone.resnet", true, p.layer_nums, p.layer_strides,
                              p.num_filters, agent_channels, p.groups, p.width_per_group, p.bn_eps);
  if (!spec.trunk.empty() && !spec.trunk.front().empty()) {
    spec.trunk.front().front().input_act = "pyramid_backbone.input";
  }
  for (size_t l = 0; l < p.num_filters.size(); ++l) {
    spec.occupancy_heads.push_back(absl::StrCat("pyramid_backbone.single_head_", l));
    BlockSpec d;
    d.name = absl::StrCat("pyramid_backbone.deblocks.", l);
    d.kind = BlockKind::kDeconv;
    LayerSpec deconv;
    deconv.name = d.name + ".0";
    deconv.bn = d.name + ".1";
    deconv.kind = LayerKind::kDeconv;
    deconv.in = p.num_filters[l];
    deconv.out = l < p.num_upsample_filters.size() ? p.num_upsample_filters[l] : 0;
    deconv.stride = deconv.kernel = l < p.upsample_strides.size() ? p.upsample_strides[l] : 1;
    deconv.relu = true;
    deconv.bn_eps = p.deconv_bn_eps;
    d.layers = {deconv};
    d.input_act = d.name + ".input";
    // Every level decodes into one quantizer, so the concatenation needs no requantizing.
    d.layer_acts = {"pyramid_backbone.deblocks.output"};
    spec.deconvs.push_back(std::move(d));
  }

  const ShrinkConfig& s = m.shrink_header;
  spec.shrink.name = "shrink_conv.layers.0";
  spec.shrink.kind = BlockKind::kSequential;
  LayerSpec c0 = Conv("shrink_conv.layers.0.double_conv.0", "", s.input_dim, s.dim, s.kernel_size,
                      s.stride, 1, true, 0);
  c0.padding = s.padding;
  c0.has_bias = true;
  LayerSpec c2 = Conv("shrink_conv.layers.0.double_conv.2", "", s.dim, s.dim, 3, 1, 1, true, 0);
  c2.has_bias = true;
  spec.shrink.layers = {c0, c2};
  spec.shrink.layer_acts = {c0.name, c2.name};

  spec.heads.name = "heads";
  spec.heads.kind = BlockKind::kHeads;
  const int64_t a = m.anchor_number;
  for (auto [name, out] : {std::pair<const char*, int64_t>{"cls_head", ClsHeadChannels(cfg)},
                           {"reg_head", 7 * a},
                           {"dir_head", m.dir_args.num_bins * a}}) {
    LayerSpec h = Conv(name, "", s.dim, out, 1, 1, 1, false, 0);
    h.has_bias = true;
    spec.heads.layers.push_back(h);
    spec.heads.layer_acts.push_back("");  // FP32 outputs (SPEC §7)
  }
  return spec;
}

std::vector<const BlockSpec*> ModelSpec::Blocks() const {
  std::vector<const BlockSpec*> out;
  for (const BlockSpec& b : agent) out.push_back(&b);
  for (const auto& level : trunk) {
    for (const BlockSpec& b : level) out.push_back(&b);
  }
  for (const BlockSpec& b : deconvs) out.push_back(&b);
  out.push_back(&shrink);
  out.push_back(&heads);
  return out;
}

std::vector<std::string> ModelSpec::ActNames() const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& n) {
    if (!n.empty() && seen.insert(n).second) out.push_back(n);
  };
  for (const BlockSpec* b : Blocks()) {
    add(b->input_act);
    for (const std::string& a : b->layer_acts) add(a);
    add(b->shortcut_act);
    add(b->output_act);
  }
  return out;
}

}  // namespace qv2x::quant
