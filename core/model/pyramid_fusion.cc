#include "core/model/pyramid_fusion.h"

#include <cmath>

#include <limits>
#include <string>

namespace qv2x {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

bool IsIdentity(const torch::Tensor& warp) {
  const auto a = warp.accessor<float, 2>();
  return a[0][0] == 1.f && a[0][1] == 0.f && a[0][2] == 0.f && a[1][0] == 0.f && a[1][1] == 1.f &&
         a[1][2] == 0.f;
}

// One agent's map [1, C, H, W] sampled in the ego frame; `cpu_warp` [2, 3] decides the
// identity short cut, `warp` [1, 2, 3] is used for sampling.
torch::Tensor WarpOne(const torch::Tensor& x, const torch::Tensor& cpu_warp,
                      const torch::Tensor& warp) {
  // The ego (and any agent at the ego's pose) skips resampling: bilinear sampling at the
  // pixel centres would only add rounding noise.
  if (IsIdentity(cpu_warp)) return x;
  const torch::Tensor grid =
      F::affine_grid(warp.to(x.options()), x.sizes(), /*align_corners=*/false);
  return F::grid_sample(x, grid,
                        F::GridSampleFuncOptions()
                            .mode(torch::kBilinear)
                            .padding_mode(torch::kZeros)
                            .align_corners(false));
}

// Fuses one frame: feats[i] [1, C, H, W], scores[i] [1, 1, H, W], warps [n, 2, 3] → [C, H, W].
// Works on per-agent tensors so that inference never builds [n, C, H, W] temporaries.
torch::Tensor FuseFrame(const std::vector<torch::Tensor>& feats,
                        const std::vector<torch::Tensor>& scores, const torch::Tensor& warps) {
  const torch::Tensor cpu_warps = warps.to(torch::kCPU, torch::kFloat32).contiguous();
  const int64_t n = static_cast<int64_t>(feats.size());
  std::vector<torch::Tensor> warped_scores;
  for (int64_t i = 0; i < n; ++i) {
    warped_scores.push_back(WarpOne(scores[i], cpu_warps[i], warps.narrow(0, i, 1)));
  }
  torch::Tensor s = n == 1 ? warped_scores.front() : torch::cat(warped_scores);
  // Cells an agent cannot see (sampled outside its map) get no weight at all.
  s = s.masked_fill(s == 0, -std::numeric_limits<float>::infinity());
  s = torch::softmax(s, 0);
  s = torch::where(torch::isnan(s), torch::zeros_like(s), s);
  const bool grad = torch::GradMode::is_enabled();
  torch::Tensor out;
  for (int64_t i = 0; i < n; ++i) {
    const torch::Tensor f = WarpOne(feats[i], cpu_warps[i], warps.narrow(0, i, 1));
    const torch::Tensor w = s.narrow(0, i, 1);
    if (i == 0) {
      out = f * w;
    } else if (grad) {
      out = out + f * w;
    } else {
      out.addcmul_(f, w);
    }
  }
  return out.squeeze(0);
}

std::vector<torch::Tensor> Split(const torch::Tensor& x) {
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < x.size(0); ++i) out.push_back(x.narrow(0, i, 1));
  return out;
}

}  // namespace

torch::Tensor WarpToEgo(const torch::Tensor& x, const torch::Tensor& warps) {
  const torch::Tensor cpu_warps = warps.to(torch::kCPU, torch::kFloat32).contiguous();
  std::vector<torch::Tensor> parts;
  bool any_warped = false;
  for (int64_t i = 0; i < x.size(0); ++i) {
    parts.push_back(WarpOne(x.narrow(0, i, 1), cpu_warps[i], warps.narrow(0, i, 1)));
    any_warped |= !IsIdentity(cpu_warps[i]);
  }
  if (!any_warped) return x;
  return parts.size() == 1 ? parts.front() : torch::cat(parts);
}

torch::Tensor WeightedFuse(const torch::Tensor& x, const torch::Tensor& score,
                           const std::vector<int64_t>& record_len, const torch::Tensor& warps) {
  std::vector<torch::Tensor> frames;
  frames.reserve(record_len.size());
  int64_t offset = 0;
  for (const int64_t n : record_len) {
    frames.push_back(FuseFrame(Split(x.narrow(0, offset, n)), Split(score.narrow(0, offset, n)),
                               warps.narrow(0, offset, n)));
    offset += n;
  }
  return torch::stack(frames);
}

PyramidFusionImpl::PyramidFusionImpl(const PyramidConfig& cfg, int64_t in_channels) {
  ResNetSpec spec;
  spec.block = ResNetSpec::Block::kBottleneck;
  spec.layer_nums = cfg.layer_nums;
  spec.layer_strides = cfg.layer_strides;
  spec.num_filters = cfg.num_filters;
  spec.inplanes = in_channels;
  spec.groups = cfg.groups;
  spec.width_per_group = cfg.width_per_group;
  spec.bn_eps = cfg.bn_eps;
  resnet = register_module("resnet", ResNetTrunk(spec));

  deblocks = register_module("deblocks", nn::ModuleList());
  for (size_t i = 0; i < cfg.num_filters.size(); ++i) {
    const int64_t stride = cfg.upsample_strides[i];
    const int64_t out = cfg.num_upsample_filters[i];
    deblocks->push_back(nn::Sequential(
        nn::ConvTranspose2d(
            nn::ConvTranspose2dOptions(cfg.num_filters[i], out, stride).stride(stride).bias(false)),
        nn::BatchNorm2d(
            nn::BatchNorm2dOptions(out).eps(cfg.deconv_bn_eps).momentum(cfg.deconv_bn_momentum)),
        nn::ReLU()));
    out_channels_ += out;
  }
  for (size_t i = 0; i < cfg.num_filters.size(); ++i) {
    heads_.push_back(register_module("single_head_" + std::to_string(i),
                                     nn::Conv2d(nn::Conv2dOptions(cfg.num_filters[i], 1, 1))));
    // Focal-loss prior p = 0.01, as for the cls head (ego_fusion.cc); the softmax over
    // agents sees equal scores either way.
    torch::NoGradGuard no_grad;
    heads_.back()->bias.fill_(-std::log((1.0 - 0.01) / 0.01));
  }
}

void PyramidFusionImpl::Freeze() {
  resnet->Freeze();
  frozen_heads_.clear();
  frozen_deblocks_.clear();
  for (size_t l = 0; l < heads_.size(); ++l) {
    frozen_heads_.emplace_back(*heads_[l], nullptr, /*relu=*/false);
    const auto& seq = deblocks[l]->as<nn::SequentialImpl>();
    frozen_deblocks_.emplace_back(*seq->ptr(0)->as<nn::ConvTranspose2dImpl>(),
                                  seq->ptr(1)->as<nn::BatchNorm2dImpl>(), /*relu=*/true);
  }
}

torch::Tensor PyramidFusionImpl::Head(int64_t level, const torch::Tensor& f) {
  if (!is_training() && level < static_cast<int64_t>(frozen_heads_.size()) &&
      frozen_heads_[level].usable()) {
    return frozen_heads_[level](f);
  }
  return heads_[level](f);
}

torch::Tensor PyramidFusionImpl::Deblock(int64_t level, const torch::Tensor& fused) {
  if (!is_training() && level < static_cast<int64_t>(frozen_deblocks_.size()) &&
      frozen_deblocks_[level].usable()) {
    return frozen_deblocks_[level](fused);
  }
  return deblocks[level]->as<nn::SequentialImpl>()->forward(fused);
}

PyramidOutput PyramidFusionImpl::forward(const torch::Tensor& x,
                                         const std::vector<int64_t>& record_len,
                                         const torch::Tensor& warps) {
  const int64_t n = x.size(0), levels = num_levels();
  // level_feats[l][i]: agent i's map at level l, [1, C_l, H_l, W_l].
  std::vector<std::vector<torch::Tensor>> level_feats(levels);
  if (is_training()) {
    // One batch through the trunk: BatchNorm statistics span every agent of the batch.
    torch::Tensor y = x;
    for (int64_t l = 0; l < levels; ++l) {
      y = resnet->RunLevel(l, y);
      level_feats[l] = Split(y);
    }
  } else {
    // Agent by agent: batched maps of several agents are slower on CPU (cache and
    // large-allocation page faults) than the same work done one map at a time.
    // Channels-last maps let oneDNN skip its layout reorders around every conv (5-8x on
    // the 1x1 and grouped convs here).
    for (int64_t i = 0; i < n; ++i) {
      torch::Tensor y = x.narrow(0, i, 1).contiguous(torch::MemoryFormat::ChannelsLast);
      for (int64_t l = 0; l < levels; ++l) {
        y = resnet->RunLevel(l, y);
        level_feats[l].push_back(y);
      }
    }
  }
  PyramidOutput out;
  std::vector<torch::Tensor> decoded;
  for (int64_t l = 0; l < levels; ++l) {
    std::vector<torch::Tensor> occ, score;
    for (const torch::Tensor& f : level_feats[l]) {
      occ.push_back(Head(l, f));
      score.push_back(torch::sigmoid(occ.back()) + 1e-4);
    }
    std::vector<torch::Tensor> frames;
    int64_t offset = 0;
    for (const int64_t count : record_len) {
      const std::vector<torch::Tensor> f(level_feats[l].begin() + offset,
                                         level_feats[l].begin() + offset + count);
      const std::vector<torch::Tensor> s(score.begin() + offset, score.begin() + offset + count);
      frames.push_back(FuseFrame(f, s, warps.narrow(0, offset, count)));
      offset += count;
    }
    level_feats[l].clear();  // free each level once fused
    const torch::Tensor fused =
        frames.size() == 1 ? frames.front().unsqueeze(0) : torch::stack(frames);
    decoded.push_back(Deblock(l, fused));
    out.occupancy.push_back(occ.size() == 1 ? occ.front() : torch::cat(occ));
  }
  out.fused = decoded.size() == 1 ? decoded.front() : torch::cat(decoded, 1);
  return out;
}

}  // namespace qv2x
