// Uniform affine quantizers (SPEC §7): per-output-channel weights, per-tensor activations,
// both asymmetric, with the clipping range from min/max or an Lp-error search, and the
// AdaRound rounding variables. Values are integer levels q in [0, 2^b − 1] with
// x ≈ scale · (q − zero_point).
#ifndef QV2X_CORE_QUANT_QUANTIZER_H_
#define QV2X_CORE_QUANT_QUANTIZER_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "core/quant/ptq_options.h"

namespace qv2x::quant {

inline int64_t QMax(int bits) { return (int64_t{1} << bits) - 1; }

// Per-row (output channel) weight quantizer: scale and zero_point [rows] float32 (the zero
// point holds an integer). At 8 bits the zero point is fixed at 128 (levels −128..127 after
// subtracting it): oneDNN's int8 kernels take weights with a zero point of 0 only, and a
// 256-level grid with any other zero point does not fit int8. Below 8 bits q − zero_point
// always fits int8, so the grid is fully asymmetric.
struct WeightQuant {
  at::Tensor scale, zero_point;
  int bits = 8;
};

WeightQuant FitWeightQuant(const at::Tensor& w, int bits, ScaleMethod method);
// Nearest levels (float tensor of integers, shape of w).
at::Tensor WeightLevels(const at::Tensor& w, const WeightQuant& q);
// scale · (levels − zero_point), broadcast over rows.
at::Tensor DequantizeWeight(const at::Tensor& levels, const WeightQuant& q);

// AdaRound (Nagel et al. 2020): levels = clamp(floor(w/s) + h(v) + z), h(v) =
// clamp(sigmoid(v)·(ζ − γ) + γ, 0, 1), ζ = 1.1, γ = −0.1. v starts where h(v) equals the
// fractional part of w/s, so the soft weights start at w.
at::Tensor AdaRoundInit(const at::Tensor& w, const WeightQuant& q);
at::Tensor AdaRoundH(const at::Tensor& v);
at::Tensor AdaRoundSoftLevels(const at::Tensor& w, const WeightQuant& q, const at::Tensor& v);
at::Tensor AdaRoundHardLevels(const at::Tensor& w, const WeightQuant& q, const at::Tensor& v);
// Σ (1 − |2h(v) − 1|^β): pushes every h(v) to 0 or 1.
at::Tensor AdaRoundRegularizer(const at::Tensor& v, double beta);

// Per-tensor activation quantizer.
struct ActQuant {
  double scale = 1.0;
  int64_t zero_point = 0;
  int bits = 8;
  double lo() const { return scale * static_cast<double>(-zero_point); }
  double hi() const { return scale * static_cast<double>(QMax(bits) - zero_point); }
};

// Statistics of one activation over the calibration data: the exact range and a random
// subsample of values for the error search.
class ActObserver {
 public:
  void Add(const at::Tensor& x);
  bool empty() const { return count_ == 0; }
  double lo() const { return lo_; }
  double hi() const { return hi_; }
  at::Tensor Samples() const;

 private:
  double lo_ = 0, hi_ = 0;
  int64_t count_ = 0;
  std::vector<at::Tensor> samples_;
};

// The range always includes 0 (exactly representable: zero padding stays zero).
ActQuant FitActQuant(const ActObserver& obs, int bits, ScaleMethod method);
ActQuant ActQuantFromRange(double lo, double hi, int bits);
// Fake quantization with a straight-through gradient.
at::Tensor FakeQuantAct(const at::Tensor& x, const ActQuant& q);

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_QUANTIZER_H_
