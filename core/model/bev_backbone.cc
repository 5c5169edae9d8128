#include "core/model/bev_backbone.h"

namespace qv2x {

ResNetBevBackboneImpl::ResNetBevBackboneImpl(const BackboneConfig& cfg, int64_t in_channels) {
  ResNetSpec spec;
  spec.block = ResNetSpec::Block::kBasic;
  spec.layer_nums = cfg.layer_nums;
  spec.layer_strides = cfg.layer_strides;
  spec.num_filters = cfg.num_filters;
  spec.inplanes = in_channels;
  spec.bn_eps = cfg.bn_eps;
  resnet = register_module("resnet", ResNetTrunk(spec));
  for (int f : cfg.num_filters) out_channels_ += f;
}

torch::Tensor ResNetBevBackboneImpl::forward(const torch::Tensor& bev) {
  std::vector<torch::Tensor> levels = resnet(bev);
  return levels.size() == 1 ? levels.front() : torch::cat(levels, 1);
}

}  // namespace qv2x
