#include "core/model/codebook.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/fnv1a.h"

namespace qv2x {
namespace {

namespace F = torch::nn::functional;

}  // namespace

CodebookImpl::CodebookImpl(const CodebookConfig& cfg)
    : channels_(cfg.channel),
      segments_(cfg.seg_num),
      dict_size_(cfg.dict_size),
      seg_dim_(cfg.channel / cfg.seg_num) {
  codewords = register_module("codewords", torch::nn::ParameterList());
  const double stddev = std::sqrt(2.0 / (5.0 * static_cast<double>(seg_dim_)));
  for (int l = 0; l < cfg.residual_levels; ++l) {
    // ParameterList keeps the tensor's requires_grad flag, so set it here.
    codewords->append(
        (torch::randn({segments_, dict_size_, seg_dim_}) * stddev).requires_grad_(true));
  }
}

torch::Tensor CodebookImpl::ToSegments(const torch::Tensor& x) const {
  // [N, C, H, W] → [N, H, W, C] → [P, m, d] → [m, P, d]
  return x.permute({0, 2, 3, 1}).reshape({-1, segments_, seg_dim_}).transpose(0, 1);
}

torch::Tensor CodebookImpl::FromSegments(const torch::Tensor& s,
                                         const torch::IntArrayRef& shape) const {
  // [m, P, d] → [P, m, d] → [N, H, W, C] → [N, C, H, W], left channels-last in memory.
  return s.transpose(0, 1).reshape({shape[0], shape[2], shape[3], channels_}).permute({0, 3, 1, 2});
}

torch::Tensor CodebookImpl::Distances(const torch::Tensor& x, int64_t level) const {
  const torch::Tensor& cb = (*codewords)[level];             // [m, k, d]
  const torch::Tensor x_sq = x.pow(2).sum(2, true);          // [m, P, 1]
  const torch::Tensor c_sq = cb.pow(2).sum(2).unsqueeze(1);  // [m, 1, k]
  return torch::baddbmm(x_sq + c_sq, x, cb.transpose(1, 2), /*beta=*/1, /*alpha=*/-2);
}

CodebookOutput CodebookImpl::forward(const torch::Tensor& x) {
  CodebookOutput out;
  if (!is_training()) {
    out.indices = Encode(x);
    out.reconstruction = DecodeUnchecked(out.indices);
    out.loss = F::mse_loss(out.reconstruction, x.detach());
    return out;
  }
  const torch::Tensor target = ToSegments(x);  // [m, P, d]
  const double inv_sqrt_k = 1.0 / std::sqrt(static_cast<double>(dict_size_));
  torch::Tensor residual = target;
  torch::Tensor recon;
  for (int64_t l = 0; l < levels(); ++l) {
    const torch::Tensor logits = Distances(residual, l) * -inv_sqrt_k;  // [m, P, k]
    const torch::Tensor one_hot =
        F::gumbel_softmax(logits, F::GumbelSoftmaxFuncOptions().tau(1.0).hard(true).dim(-1));
    const torch::Tensor level_recon = torch::bmm(one_hot, (*codewords)[l]);  // [m, P, d]
    recon = l == 0 ? level_recon : recon + level_recon;
    residual = residual - level_recon;
  }
  out.reconstruction = FromSegments(recon, x.sizes());
  out.loss = F::mse_loss(out.reconstruction, x.detach());
  return out;
}

torch::Tensor CodebookImpl::Encode(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  torch::Tensor residual = ToSegments(x);
  std::vector<torch::Tensor> per_level;
  for (int64_t l = 0; l < levels(); ++l) {
    torch::Tensor idx = Distances(residual, l).argmin(2);  // [m, P]
    per_level.push_back(idx);
    if (l + 1 < levels()) {
      const torch::Tensor& cb = (*codewords)[l];
      // Gather the chosen codewords per segment: [m, P, d].
      residual = residual - torch::gather(cb, 1, idx.unsqueeze(2).expand({-1, -1, seg_dim_}));
    }
  }
  // [L·m, P] → [L·m, N, H, W] → [N, L·m, H, W]
  return torch::cat(per_level, 0).view({-1, n, h, w}).permute({1, 0, 2, 3}).contiguous();
}

torch::Tensor CodebookImpl::DecodeUnchecked(const torch::Tensor& indices) {
  return DecodeImpl(indices, /*has_unsent=*/false);
}

torch::Tensor CodebookImpl::DecodeImpl(const torch::Tensor& indices, bool has_unsent) {
  const int64_t n = indices.size(0), h = indices.size(2), w = indices.size(3);
  // [N, L·m, H, W] → [L, m, P]; row of segment s in the flattened [m·k, d] table is s·k + i.
  torch::Tensor idx =
      indices.to(torch::kInt64).permute({1, 0, 2, 3}).reshape({levels(), segments_, n * h * w});
  torch::Tensor sent;  // [L, m, P, 1] float: 0 where a sparse message left the cell out
  if (has_unsent) {
    sent = idx.ge(0).to(torch::kFloat32).unsqueeze(-1);
    idx = idx.clamp_min(0);
  }
  const torch::Tensor offsets =
      torch::arange(segments_, idx.options()).mul_(dict_size_).view({segments_, 1});
  torch::Tensor recon;
  for (int64_t l = 0; l < levels(); ++l) {
    const torch::Tensor flat = (idx[l] + offsets).view({-1});  // [m·P]
    torch::Tensor part = (*codewords)[l].reshape({-1, seg_dim_}).index_select(0, flat);
    part = part.view({segments_, -1, seg_dim_});  // [m, P, d]
    if (has_unsent) part = part * sent[l].to(part.dtype());
    recon = l == 0 ? part : recon + part;
  }
  return FromSegments(recon, {n, channels_, h, w});
}

absl::StatusOr<torch::Tensor> CodebookImpl::Decode(const torch::Tensor& indices) {
  if (indices.dim() != 4 || indices.size(1) != levels() * segments_) {
    return absl::InvalidArgumentError(absl::StrCat("codebook indices: expected shape [N, ",
                                                   levels() * segments_, ", H, W], got ",
                                                   c10::str(indices.sizes())));
  }
  if (indices.is_floating_point() || indices.is_complex() ||
      indices.scalar_type() == torch::kBool) {
    return absl::InvalidArgumentError(absl::StrCat(
        "codebook indices: expected an integer dtype, got ", c10::toString(indices.scalar_type())));
  }
  bool has_unsent = false;
  if (indices.numel() > 0) {
    const auto [lo, hi] = torch::aminmax(indices);
    if (lo.item<int64_t>() < kUnsentCode || hi.item<int64_t>() >= dict_size_) {
      return absl::InvalidArgumentError(absl::StrCat("codebook indices: values must lie in [",
                                                     kUnsentCode, ", ", dict_size_, "), got [",
                                                     lo.item<int64_t>(), ", ", hi.item<int64_t>(),
                                                     "]"));
    }
    has_unsent = lo.item<int64_t>() < 0;
  }
  return DecodeImpl(indices, has_unsent);
}

std::string CodewordsDigest(const std::vector<torch::Tensor>& levels) {
  uint64_t h = kFnv1aOffset;
  // Shape first (levels, then each level's m, k, d as little-endian int64), then values.
  auto mix_int = [&h](int64_t v) {
    for (int i = 0; i < 8; ++i) {
      const unsigned char byte =
          static_cast<unsigned char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
      Fnv1a(h, &byte, 1);
    }
  };
  mix_int(static_cast<int64_t>(levels.size()));
  for (const torch::Tensor& level : levels) {
    for (int64_t d : level.sizes()) mix_int(d);
  }
  for (const torch::Tensor& level : levels) {
    const torch::Tensor t = level.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    Fnv1a(h, t.data_ptr<float>(), sizeof(float) * t.numel());
  }
  return absl::StrFormat("%016x", h);
}

std::string CodebookImpl::Digest() const {
  std::vector<torch::Tensor> all;
  for (int64_t l = 0; l < levels(); ++l) all.push_back((*codewords)[l]);
  return CodewordsDigest(all);
}

namespace {

// k-means over the rows of x [P, d] into k centres (k-means++ seeding).
torch::Tensor KMeans(const torch::Tensor& x, int64_t k, int iterations) {
  const int64_t p = x.size(0);
  torch::Tensor centres = torch::empty({k, x.size(1)}, x.options());
  int64_t first = torch::randint(p, {1}).item<int64_t>();
  centres[0] = x[first];
  torch::Tensor d2 = (x - x[first]).pow(2).sum(1);
  for (int64_t i = 1; i < k; ++i) {
    const torch::Tensor total = d2.sum();
    const int64_t pick = total.item<double>() > 0
                             ? torch::multinomial(d2 / total, 1).item<int64_t>()
                             : torch::randint(p, {1}).item<int64_t>();
    centres[i] = x[pick];
    d2 = torch::minimum(d2, (x - x[pick]).pow(2).sum(1));
  }
  for (int it = 0; it < iterations; ++it) {
    const torch::Tensor dist = x.pow(2).sum(1, true) + centres.pow(2).sum(1).unsqueeze(0) -
                               2 * torch::matmul(x, centres.t());
    const torch::Tensor assign = dist.argmin(1);
    torch::Tensor sums = torch::zeros_like(centres).index_add_(0, assign, x);
    torch::Tensor counts =
        torch::zeros({k}, x.options()).index_add_(0, assign, torch::ones({p}, x.options()));
    const torch::Tensor used = counts > 0;
    centres = torch::where(used.unsqueeze(1), sums / counts.clamp_min(1).unsqueeze(1), centres);
  }
  return centres;
}

}  // namespace

void CodebookImpl::InitFromFeatures(const torch::Tensor& features, int iterations) {
  torch::NoGradGuard no_grad;
  // [m, P, d] over the occupied positions only.
  torch::Tensor segs = ToSegments(features.to(torch::kFloat).contiguous());
  const torch::Tensor occupied = segs.abs().sum(std::vector<int64_t>{0, 2}) > 0;
  segs = segs.index({torch::indexing::Slice(), occupied}).contiguous();
  if (segs.size(1) < dict_size_) return;  // too little data: keep the random init
  torch::Tensor residual = segs;
  for (int64_t l = 0; l < levels(); ++l) {
    torch::Tensor level_codes = (*codewords)[l];
    for (int64_t s = 0; s < segments_; ++s) {
      level_codes[s].copy_(KMeans(residual[s], dict_size_, iterations));
    }
    // What this level leaves over feeds the next one.
    const torch::Tensor nearest = Distances(residual, l).argmin(2);  // [m, P]
    std::vector<torch::Tensor> picked;
    for (int64_t s = 0; s < segments_; ++s)
      picked.push_back(level_codes[s].index_select(0, nearest[s]));
    residual = residual - torch::stack(picked);
  }
}

}  // namespace qv2x
