#include "core/quant/quantizer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace qv2x::quant {
namespace {

constexpr double kMinScale = 1e-8;
constexpr double kZeta = 1.1, kGamma = -0.1;
// The Lp norm of BRECQ's range search; it weighs large errors more than MSE does.
constexpr double kSearchP = 2.4;

// [rows] → [rows, 1, ..., 1] to broadcast over a weight of `dim` dimensions.
at::Tensor PerRow(const at::Tensor& t, int64_t dim) {
  std::vector<int64_t> shape(dim, 1);
  shape[0] = t.size(0);
  return t.view(shape);
}

WeightQuant WeightQuantFromRange(const at::Tensor& lo, const at::Tensor& hi, int bits) {
  WeightQuant q;
  q.bits = bits;
  const double qmax = static_cast<double>(QMax(bits));
  if (bits == 8) {
    q.scale = torch::maximum(-lo / 128.0, hi / 127.0).clamp_min(kMinScale);
    q.zero_point = torch::full_like(lo, 128.0);
  } else {
    q.scale = ((hi - lo) / qmax).clamp_min(kMinScale);
    q.zero_point = torch::round(-lo / q.scale).clamp(0, qmax);
  }
  return q;
}

// Per-row Lp error of quantizing w2 [rows, n] with q.
at::Tensor RowError(const at::Tensor& w2, const WeightQuant& q) {
  const at::Tensor deq = DequantizeWeight(WeightLevels(w2, q), q);
  return (w2 - deq).abs().pow(kSearchP).sum(1);
}

}  // namespace

WeightQuant FitWeightQuant(const at::Tensor& w, int bits, ScaleMethod method) {
  torch::NoGradGuard no_grad;
  const at::Tensor w2 = w.detach().to(torch::kFloat32).reshape({w.size(0), -1});
  const at::Tensor lo = w2.amin(1).clamp_max(0), hi = w2.amax(1).clamp_min(0);
  WeightQuant best = WeightQuantFromRange(lo, hi, bits);
  if (method == ScaleMethod::kMinMax) return best;
  at::Tensor best_err = RowError(w2, best);
  for (int i = 1; i < 80; ++i) {
    const double c = 1.0 - 0.01 * i;
    WeightQuant cand = WeightQuantFromRange(lo * c, hi * c, bits);
    const at::Tensor err = RowError(w2, cand);
    const at::Tensor better = err < best_err;
    best.scale = torch::where(better, cand.scale, best.scale);
    best.zero_point = torch::where(better, cand.zero_point, best.zero_point);
    best_err = torch::where(better, err, best_err);
  }
  return best;
}

at::Tensor WeightLevels(const at::Tensor& w, const WeightQuant& q) {
  const int64_t d = w.dim();
  return torch::clamp(torch::round(w / PerRow(q.scale, d)) + PerRow(q.zero_point, d), 0,
                      static_cast<double>(QMax(q.bits)));
}

at::Tensor DequantizeWeight(const at::Tensor& levels, const WeightQuant& q) {
  const int64_t d = levels.dim();
  return (levels - PerRow(q.zero_point, d)) * PerRow(q.scale, d);
}

at::Tensor AdaRoundInit(const at::Tensor& w, const WeightQuant& q) {
  torch::NoGradGuard no_grad;
  const at::Tensor x = w / PerRow(q.scale, w.dim());
  const at::Tensor frac = x - torch::floor(x);
  // h(v) = frac  ⇔  sigmoid(v) = (frac − γ) / (ζ − γ).
  return -torch::log((kZeta - kGamma) / (frac - kGamma) - 1.0);
}

at::Tensor AdaRoundH(const at::Tensor& v) {
  return torch::clamp(torch::sigmoid(v) * (kZeta - kGamma) + kGamma, 0, 1);
}

at::Tensor AdaRoundSoftLevels(const at::Tensor& w, const WeightQuant& q, const at::Tensor& v) {
  const int64_t d = w.dim();
  const at::Tensor floor = torch::floor(w.detach() / PerRow(q.scale, d));
  return torch::clamp(floor + AdaRoundH(v) + PerRow(q.zero_point, d), 0,
                      static_cast<double>(QMax(q.bits)));
}

at::Tensor AdaRoundHardLevels(const at::Tensor& w, const WeightQuant& q, const at::Tensor& v) {
  torch::NoGradGuard no_grad;
  const int64_t d = w.dim();
  const at::Tensor floor = torch::floor(w / PerRow(q.scale, d));
  return torch::clamp(floor + (v >= 0).to(w.scalar_type()) + PerRow(q.zero_point, d), 0,
                      static_cast<double>(QMax(q.bits)));
}

at::Tensor AdaRoundRegularizer(const at::Tensor& v, double beta) {
  return (1 - (2 * AdaRoundH(v) - 1).abs().pow(beta)).sum();
}

void ActObserver::Add(const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  const at::Tensor flat = x.detach().to(torch::kFloat32).reshape({-1});
  if (flat.numel() == 0) return;
  const auto [mn, mx] = torch::aminmax(flat);
  const double lo = mn.item<double>(), hi = mx.item<double>();
  lo_ = count_ == 0 ? lo : std::min(lo_, lo);
  hi_ = count_ == 0 ? hi : std::max(hi_, hi);
  ++count_;
  constexpr int64_t kPerCall = 8192;
  if (flat.numel() <= kPerCall) {
    samples_.push_back(flat.clone());
  } else {
    samples_.push_back(
        flat.index_select(0, torch::randint(flat.numel(), {kPerCall}, torch::kLong)));
  }
}

at::Tensor ActObserver::Samples() const {
  return samples_.empty() ? torch::zeros({1}) : torch::cat(samples_);
}

ActQuant ActQuantFromRange(double lo, double hi, int bits) {
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  const double qmax = static_cast<double>(QMax(bits));
  ActQuant q;
  q.bits = bits;
  q.scale = std::max((hi - lo) / qmax, kMinScale);
  q.zero_point = static_cast<int64_t>(std::clamp(std::nearbyint(-lo / q.scale), 0.0, qmax));
  return q;
}

ActQuant FitActQuant(const ActObserver& obs, int bits, ScaleMethod method) {
  ActQuant best = ActQuantFromRange(obs.lo(), obs.hi(), bits);
  if (method == ScaleMethod::kMinMax || obs.empty()) return best;
  torch::NoGradGuard no_grad;
  const at::Tensor s = obs.Samples();
  auto error = [&](const ActQuant& q) {
    return (s - FakeQuantAct(s, q)).abs().pow(kSearchP).sum().item<double>();
  };
  double best_err = error(best);
  for (int i = 1; i < 80; ++i) {
    const double c = 1.0 - 0.01 * i;
    const ActQuant cand = ActQuantFromRange(obs.lo() * c, obs.hi() * c, bits);
    const double err = error(cand);
    if (err < best_err) best = cand, best_err = err;
  }
  return best;
}

at::Tensor FakeQuantAct(const at::Tensor& x, const ActQuant& q) {
  const at::Tensor y = x / q.scale;
  // Straight-through rounding; clamping still stops the gradient outside the range.
  const at::Tensor r = x.requires_grad() ? y + (torch::round(y) - y).detach() : torch::round(y);
  return (torch::clamp(r + static_cast<double>(q.zero_point), 0,
                       static_cast<double>(QMax(q.bits))) -
          static_cast<double>(q.zero_point)) *
         q.scale;
}

}  // namespace qv2x::quant
