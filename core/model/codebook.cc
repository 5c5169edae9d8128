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

// QuantV2X keeps its temperature above this bound (`_bound.bound`).
constexpr double kTemperatureBound = 1e-6;

// [N, C, H, W] → rows [N·H·W, C].
torch::Tensor Rows(const torch::Tensor& x) {
  return x.permute({0, 2, 3, 1}).reshape({-1, x.size(1)});
}

// Rows [P, C] ↔ segments [m, P, d].
torch::Tensor RowsToSegments(const torch::Tensor& rows, int64_t m, int64_t d) {
  return rows.reshape({-1, m, d}).transpose(0, 1);
}
torch::Tensor SegmentsToRows(const torch::Tensor& s) {
  return s.transpose(0, 1).reshape({s.size(1), -1});
}

// What a umgm level quantises: z = latentStageEncoder(x) and quantizationHead(z) as
// segments [m, P, d].
std::pair<torch::Tensor, torch::Tensor> UmgmQuery(torch::nn::Linear& latent_stage,
                                                  torch::nn::Linear& quantization,
                                                  const torch::Tensor& x, int64_t m, int64_t d) {
  torch::Tensor z = latent_stage(x);
  torch::Tensor q = RowsToSegments(quantization(z), m, d);
  return {std::move(z), std::move(q)};
}

// A module that only holds tensors under the given names (QuantV2X's sub-module layout).
std::shared_ptr<torch::nn::Module> Holder() { return std::make_shared<torch::nn::Module>(); }

}  // namespace

CodebookImpl::CodebookImpl(const CodebookConfig& cfg)
    : channels_(cfg.channel),
      segments_(cfg.seg_num),
      dict_size_(cfg.dict_size),
      seg_dim_(cfg.channel / cfg.seg_num) {
  if (cfg.variant == kCodebookUmgm) {
    BuildUmgm(cfg);
    return;
  }
  codewords = register_module("codewords", torch::nn::ParameterList());
  const double stddev = std::sqrt(2.0 / (5.0 * static_cast<double>(seg_dim_)));
  for (int l = 0; l < cfg.residual_levels; ++l) {
    // ParameterList keeps the tensor's requires_grad flag, so set it here.
    codewords->append(
        (torch::randn({segments_, dict_size_, seg_dim_}) * stddev).requires_grad_(true));
    levels_.push_back((*codewords)[l]);
  }
}

void CodebookImpl::BuildUmgm(const CodebookConfig& cfg) {
  auto encoders = register_module("_encoders", torch::nn::ModuleList());
  auto decoders = register_module("_decoders", torch::nn::ModuleList());
  auto freq = register_module("_freqEMA", Holder());
  const double stddev = std::sqrt(2.0 / (5.0 * static_cast<double>(seg_dim_)));
  const int levels = cfg.residual_levels;
  for (int l = 0; l < levels; ++l) {
    const bool last = l + 1 == levels;
    UmgmHeads h;
    auto linear = [this] { return torch::nn::Linear(channels_, channels_); };
    const torch::Tensor cw =
        (torch::randn({segments_, dict_size_, seg_dim_}) * stddev).requires_grad_(true);
    auto enc = Holder();
    auto quantizer = enc->register_module("_quantizer", Holder());
    quantizer->register_parameter("_codebook", cw);
    h.temperature = quantizer->register_parameter("_temperature", torch::ones({segments_, 1}));
    quantizer->register_module("_bound", Holder())
        ->register_buffer("bound", torch::full({1}, kTemperatureBound));
    // The same tensor again, as a buffer: loaded and saved under its three names but
    // trained (and counted) once.
    enc->register_module("_dequantizer", Holder())->register_buffer("_codebook", cw);
    h.latent_stage = enc->register_module("_latentStageEncoder", linear());
    h.quantization = enc->register_module("_quantizationHead", linear());
    if (!last) h.latent = enc->register_module("_latentHead", linear());
    encoders->push_back(enc);

    auto dec = Holder();
    dec->register_module("_dequantizer", Holder())->register_buffer("_codebook", cw);
    h.dequantization = dec->register_module("_dequantizationHead", linear());
    if (!last) h.side = dec->register_module("_sideHead", linear());
    h.restore = dec->register_module("_restoreHead", linear());
    decoders->push_back(dec);

    h.freq_ema = freq->register_buffer(std::to_string(l), torch::zeros({segments_, dict_size_}));
    levels_.push_back(cw);
    heads_.push_back(std::move(h));
  }
}

torch::Tensor CodebookImpl::ToSegments(const torch::Tensor& x) const {
  // [N, C, H, W] → [N, H, W, C] → [P, m, d] → [m, P, d]
  return RowsToSegments(Rows(x), segments_, seg_dim_);
}

torch::Tensor CodebookImpl::FromSegments(const torch::Tensor& s,
                                         const torch::IntArrayRef& shape) const {
  // [m, P, d] → [P, m, d] → [N, H, W, C] → [N, C, H, W], left channels-last in memory.
  return s.transpose(0, 1).reshape({shape[0], shape[2], shape[3], channels_}).permute({0, 3, 1, 2});
}

torch::Tensor CodebookImpl::Distances(const torch::Tensor& x, int64_t level) const {
  const torch::Tensor& cb = levels_[level];                  // [m, k, d]
  const torch::Tensor x_sq = x.pow(2).sum(2, true);          // [m, P, 1]
  const torch::Tensor c_sq = cb.pow(2).sum(2).unsqueeze(1);  // [m, 1, k]
  return torch::baddbmm(x_sq + c_sq, x, cb.transpose(1, 2), /*beta=*/1, /*alpha=*/-2);
}

torch::Tensor CodebookImpl::Gather(int64_t l, const torch::Tensor& idx) const {
  return torch::gather(levels_[l], 1, idx.unsqueeze(2).expand({-1, -1, seg_dim_}));
}

CodebookOutput CodebookImpl::forward(const torch::Tensor& x) {
  CodebookOutput out;
  if (!is_training()) {
    out.indices = Encode(x);
    out.reconstruction = DecodeUnchecked(out.indices);
    out.loss = F::mse_loss(out.reconstruction, x.detach());
    return out;
  }
  if (umgm()) return ForwardUmgm(x);
  const torch::Tensor target = ToSegments(x);  // [m, P, d]
  const double inv_sqrt_k = 1.0 / std::sqrt(static_cast<double>(dict_size_));
  torch::Tensor residual = target;
  torch::Tensor recon;
  for (int64_t l = 0; l < levels(); ++l) {
    const torch::Tensor logits = Distances(residual, l) * -inv_sqrt_k;  // [m, P, k]
    const torch::Tensor one_hot =
        F::gumbel_softmax(logits, F::GumbelSoftmaxFuncOptions().tau(1.0).hard(true).dim(-1));
    const torch::Tensor level_recon = torch::bmm(one_hot, levels_[l]);  // [m, P, d]
    recon = l == 0 ? level_recon : recon + level_recon;
    residual = residual - level_recon;
  }
  out.reconstruction = FromSegments(recon, x.sizes());
  out.loss = F::mse_loss(out.reconstruction, x.detach());
  return out;
}

CodebookOutput CodebookImpl::ForwardUmgm(const torch::Tensor& x) {
  // Straight-through Gumbel-softmax picks each level's codewords; the reconstruction is
  // decoded from the picked ones, as QuantV2X trains it.
  const double inv_sqrt_k = 1.0 / std::sqrt(static_cast<double>(dict_size_));
  std::vector<torch::Tensor> chosen;
  torch::Tensor xi = Rows(x);
  for (int64_t l = 0; l < levels(); ++l) {
    UmgmHeads& h = heads_[l];
    const auto [z, q] = UmgmQuery(h.latent_stage, h.quantization, xi, segments_, seg_dim_);
    const torch::Tensor scale = h.temperature.clamp_min(kTemperatureBound).unsqueeze(-1);
    const torch::Tensor logits = Distances(q, l) * -inv_sqrt_k * scale;  // [m, P, k]
    const torch::Tensor one_hot =
        F::gumbel_softmax(logits, F::GumbelSoftmaxFuncOptions().tau(1.0).hard(true).dim(-1));
    const torch::Tensor picked = SegmentsToRows(torch::bmm(one_hot, levels_[l]));  // [P, C]
    chosen.push_back(picked);
    if (h.latent) xi = h.latent(z) - picked;
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor usage = one_hot.detach().mean(1);  // [m, k]
      h.freq_ema.mul_(0.9).add_(usage, 0.1);
    }
  }
  CodebookOutput out;
  out.reconstruction = DecodeUmgmRows(chosen)
                           .view({x.size(0), x.size(2), x.size(3), channels_})
                           .permute({0, 3, 1, 2});
  out.loss = F::mse_loss(out.reconstruction, x.detach());
  return out;
}

torch::Tensor CodebookImpl::EncodeUmgm(const torch::Tensor& x) {
  std::vector<torch::Tensor> per_level;
  torch::Tensor xi = Rows(x);
  for (int64_t l = 0; l < levels(); ++l) {
    UmgmHeads& h = heads_[l];
    const auto [z, q] = UmgmQuery(h.latent_stage, h.quantization, xi, segments_, seg_dim_);
    const torch::Tensor idx = Distances(q, l).argmin(2);  // [m, P]
    per_level.push_back(idx);
    if (h.latent) xi = h.latent(z) - SegmentsToRows(Gather(l, idx));
  }
  return torch::cat(per_level, 0);
}

torch::Tensor CodebookImpl::DecodeUmgmRows(const std::vector<torch::Tensor>& chosen) {
  torch::Tensor r;
  for (int64_t l = levels() - 1; l >= 0; --l) {
    UmgmHeads& h = heads_[l];
    torch::Tensor q = h.dequantization(chosen[l]);
    if (h.side) q = q + h.side(r);
    r = h.restore(q);
  }
  return r;
}

torch::Tensor CodebookImpl::Encode(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  torch::Tensor codes;  // [L·m, P]
  if (umgm()) {
    codes = EncodeUmgm(x);
  } else {
    torch::Tensor residual = ToSegments(x);
    std::vector<torch::Tensor> per_level;
    for (int64_t l = 0; l < levels(); ++l) {
      torch::Tensor idx = Distances(residual, l).argmin(2);  // [m, P]
      per_level.push_back(idx);
      if (l + 1 < levels()) residual = residual - Gather(l, idx);
    }
    codes = torch::cat(per_level, 0);
  }
  // [L·m, P] → [L·m, N, H, W] → [N, L·m, H, W]
  return codes.view({-1, n, h, w}).permute({1, 0, 2, 3}).contiguous();
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
  auto lookup = [&](int64_t l) {
    const torch::Tensor flat = (idx[l] + offsets).view({-1});  // [m·P]
    return levels_[l].reshape({-1, seg_dim_}).index_select(0, flat).view({segments_, -1, seg_dim_});
  };
  if (umgm()) {
    std::vector<torch::Tensor> chosen;
    for (int64_t l = 0; l < levels(); ++l) chosen.push_back(SegmentsToRows(lookup(l)));
    torch::Tensor rows = DecodeUmgmRows(chosen);  // [P, C]
    // An unsent cell is empty (zero), whatever the heads' biases would make of it.
    if (has_unsent) rows = rows * sent[0][0].to(rows.dtype());
    return rows.view({n, h, w, channels_}).permute({0, 3, 1, 2});
  }
  torch::Tensor recon;
  for (int64_t l = 0; l < levels(); ++l) {
    torch::Tensor part = lookup(l);  // [m, P, d]
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
      return absl::InvalidArgumentError(
          absl::StrCat("codebook indices: values must lie in [", kUnsentCode, ", ", dict_size_,
                       "), got [", lo.item<int64_t>(), ", ", hi.item<int64_t>(), "]"));
    }
    has_unsent = lo.item<int64_t>() < 0;
  }
  return DecodeImpl(indices, has_unsent);
}

namespace {

// 64-bit FNV-1a over the levels' shapes and values, then the extra tensors' values.
std::string DigestOf(const std::vector<torch::Tensor>& levels,
                     const std::vector<torch::Tensor>& extra) {
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
  auto mix_values = [&h](const torch::Tensor& v) {
    const torch::Tensor t = v.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    Fnv1a(h, t.data_ptr<float>(), sizeof(float) * t.numel());
  };
  for (const torch::Tensor& level : levels) mix_values(level);
  for (const torch::Tensor& t : extra) mix_values(t);
  return absl::StrFormat("%016x", h);
}

// The umgm heads, in digest order, by name relative to the codebook.
std::vector<std::string> UmgmHeadNames(int64_t level) {
  std::vector<std::string> out;
  const std::string enc = absl::StrCat("_encoders.", level, ".");
  const std::string dec = absl::StrCat("_decoders.", level, ".");
  for (const std::string& head :
       {enc + "_latentStageEncoder", enc + "_quantizationHead", enc + "_latentHead",
        dec + "_dequantizationHead", dec + "_sideHead", dec + "_restoreHead"}) {
    out.push_back(head + ".weight");
    out.push_back(head + ".bias");
  }
  return out;
}

}  // namespace

std::string CodebookTensorsDigest(const TensorLookup& find) {
  std::vector<torch::Tensor> levels, extra;
  const bool umgm = find("_encoders.0._quantizer._codebook") != nullptr;
  for (int64_t l = 0;; ++l) {
    const torch::Tensor* cw = find(umgm ? absl::StrCat("_encoders.", l, "._quantizer._codebook")
                                        : absl::StrCat("codewords.", l));
    if (cw == nullptr) break;
    levels.push_back(*cw);
    if (!umgm) continue;
    for (const std::string& name : UmgmHeadNames(l)) {
      if (const torch::Tensor* t = find(name)) extra.push_back(*t);
    }
  }
  return levels.empty() ? "" : DigestOf(levels, extra);
}

std::string CodebookImpl::Digest() const {
  const auto params = named_parameters();
  return CodebookTensorsDigest(
      [&](const std::string& name) -> const torch::Tensor* { return params.find(name); });
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
  if (umgm()) {
    const torch::Tensor rows = Rows(features.to(torch::kFloat));
    InitUmgmFromRows(rows.index({rows.abs().sum(1) > 0}).contiguous(), iterations);
    return;
  }
  // [m, P, d] over the occupied positions only.
  torch::Tensor segs = ToSegments(features.to(torch::kFloat).contiguous());
  const torch::Tensor occupied = segs.abs().sum(std::vector<int64_t>{0, 2}) > 0;
  segs = segs.index({torch::indexing::Slice(), occupied}).contiguous();
  if (segs.size(1) < dict_size_) return;  // too little data: keep the random init
  torch::Tensor residual = segs;
  for (int64_t l = 0; l < levels(); ++l) {
    torch::Tensor level_codes = levels_[l];
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

void CodebookImpl::InitUmgmFromRows(torch::Tensor rows, int iterations) {
  // Each level's codewords from the k-means centres of what its quantization head sees;
  // the next level sees what the latent head leaves after the nearest codeword.
  if (rows.size(0) < dict_size_) return;  // too little data: keep the random init
  for (int64_t l = 0; l < levels(); ++l) {
    UmgmHeads& h = heads_[l];
    const auto [z, q] = UmgmQuery(h.latent_stage, h.quantization, rows, segments_, seg_dim_);
    for (int64_t s = 0; s < segments_; ++s) {
      levels_[l][s].copy_(KMeans(q[s].contiguous(), dict_size_, iterations));
    }
    if (h.latent) rows = h.latent(z) - SegmentsToRows(Gather(l, Distances(q, l).argmin(2)));
  }
}

}  // namespace qv2x
