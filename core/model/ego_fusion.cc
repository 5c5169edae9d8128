#include "core/model/ego_fusion.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/model/torch_status.h"

namespace qv2x {
namespace {

namespace nn = torch::nn;

nn::Conv2d Head(int64_t in, int64_t out) { return nn::Conv2d(nn::Conv2dOptions(in, out, 1)); }

}  // namespace

torch::Tensor WarpTensor(const std::vector<AffineWarp>& warps) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(warps.size()), 2, 3}, torch::kFloat32);
  float* dst = t.data_ptr<float>();
  for (const AffineWarp& w : warps) {
    for (float v : w.a) *dst++ = v;
  }
  return t;
}

EgoFusionImpl::EgoFusionImpl(const StageConfig& cfg, Codebook shared_codebook) {
  const ModelConfig& m = cfg.model;
  int64_t in_channels = 0;
  for (int f : m.backbone.num_filters) in_channels += f;
  if (m.with_codebook) {
    codebook = register_module("codebook",
                               shared_codebook.is_empty() ? Codebook(m.codebook) : shared_codebook);
  }
  pyramid_backbone =
      register_module("pyramid_backbone", PyramidFusion(m.fusion_backbone, in_channels));
  shrink_conv = register_module("shrink_conv", ShrinkHeader(m.shrink_header));
  const int64_t dim = m.shrink_header.dim, anchors = m.anchor_number;
  cls_head = register_module("cls_head", Head(dim, ClsHeadChannels(cfg)));
  // Focal-loss prior (RetinaNet): start every anchor at p = 0.01 so that the first steps
  // are not dominated by ~10^4 easy negatives. A qv2x choice; QuantV2X leaves it at zero.
  {
    torch::NoGradGuard no_grad;
    cls_head->bias.fill_(-std::log((1.0 - 0.01) / 0.01));
  }
  reg_head = register_module("reg_head", Head(dim, 7 * anchors));
  dir_head = register_module("dir_head", Head(dim, m.dir_args.num_bins * anchors));
}

HeadOutput EgoFusionImpl::forward(const torch::Tensor& features,
                                  const std::vector<int64_t>& record_len,
                                  const torch::Tensor& warps) {
  PyramidOutput fused = pyramid_backbone(features, record_len, warps);
  torch::Tensor x = fused.fused;
  if (!shrink_conv->is_training()) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  x = shrink_conv(x);
  // Callers (losses, decoding, the wire) may read raw memory: hand out plain NCHW.
  HeadOutput out;
  out.cls = cls_head(x).contiguous();
  out.reg = reg_head(x).contiguous();
  out.dir = dir_head(x).contiguous();
  for (torch::Tensor& occ : fused.occupancy) out.occupancy.push_back(occ.contiguous());
  return out;
}

absl::StatusOr<HeadOutput> EgoFusionImpl::Fuse(const std::vector<AgentMessage>& agents) {
  if (agents.empty()) return absl::InvalidArgumentError("fusion: no agents in the frame");
  return TorchCall("fusion", [&]() -> absl::StatusOr<HeadOutput> {
    c10::InferenceMode guard;
    std::vector<torch::Tensor> maps;
    std::vector<AffineWarp> warps;
    for (size_t i = 0; i < agents.size(); ++i) {
      const AgentMessage& a = agents[i];
      torch::Tensor map;
      if (a.indices.defined()) {
        if (!has_codebook()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "fusion: agent ", i, " sent codebook indices to a model without a codebook"));
        }
        absl::StatusOr<torch::Tensor> decoded = codebook->Decode(a.indices.unsqueeze(0));
        if (!decoded.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("fusion: agent ", i, ": ", decoded.status().message()));
        }
        map = *decoded;
      } else if (a.features.defined()) {
        map = a.features.to(torch::kFloat32).unsqueeze(0);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("fusion: agent ", i, " has neither features nor indices"));
      }
      if (!maps.empty() && map.sizes() != maps.front().sizes()) {
        return absl::InvalidArgumentError(
            absl::StrCat("fusion: agent ", i, " map ", c10::str(map.sizes()),
                         " differs from the ego's ", c10::str(maps.front().sizes())));
      }
      maps.push_back(std::move(map));
      warps.push_back(a.warp);
    }
    const int64_t n = static_cast<int64_t>(maps.size());
    return forward(n == 1 ? maps.front() : torch::cat(maps), {n}, WarpTensor(warps));
  });
}

}  // namespace qv2x
