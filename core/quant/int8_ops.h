// Integer kernels of LibTorch's quantized backend, called through the dispatcher
// (quantized::conv2d_prepack / conv2d(_relu) / linear_prepack / linear(_relu) /
// linear_dynamic / add_relu / cat). Debian's LibTorch 1.13 ships the ONEDNN and QNNPACK
// engines (no FBGEMM); ONEDNN is much faster here and takes weights with zero point 0
// only, which the weight quantizer guarantees (quantizer.h). Activations are quint8
// per tensor; outputs are requantized by the kernels.
// On x86 CPUs without VNNI, oneDNN multiplies u8 activations by s8 weights with
// vpmaddubsw, whose 16-bit pair sums saturate once activations use all 8 bits (measured
// here: errors of 20 output steps on an AMD EPYC with AVX2 only). There every op below
// runs 8-bit activations on 7 bits over the same range (EngineActQuant), as PyTorch's
// reduce_range does for x86: one bit of activation resolution for exact integer sums.
#ifndef QV2X_CORE_QUANT_INT8_OPS_H_
#define QV2X_CORE_QUANT_INT8_OPS_H_

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/quant/int8_artifact.h"
#include "core/quant/model_spec.h"
#include "core/quant/quantizer.h"

namespace qv2x::quant {

// Makes ONEDNN (else QNNPACK) the quantized engine of this process; returns its name.
absl::StatusOr<std::string> SelectInt8Engine();

// Whether this CPU's integer dot products need the reduced activation range (x86 without
// AVX512-VNNI or AVX-VNNI). QV2X_INT8_REDUCE_RANGE=0|1 overrides, for tests and checks.
bool Int8NeedsReducedRange();
// `q` as the ops run it: an 8-bit activation on 7 bits over the same range where
// Int8NeedsReducedRange(), else unchanged.
ActQuant EngineActQuant(const ActQuant& q);

// qint8 per-channel weight (zero point 0) holding levels − zero_point, exact for every bit
// width the quantizer produces.
at::Tensor Int8Weight(const Int8Layer& layer);

// A conv or linear packed for the engine; it holds the only copy of the weights.
struct PackedLayer {
  LayerSpec spec;
  c10::IValue packed;
};

absl::StatusOr<PackedLayer> PackLayer(const LayerSpec& spec, const Int8Layer& layer);

// Round half to even (as quantize_per_tensor does) without a libm call: adding 1.5·2^23
// leaves no fraction bits. Valid for |v| < 2^22; callers clamp first.
inline float RoundHalfEven(float v) {
  constexpr float kMagic = 12582912.f;
  return (v + kMagic) - kMagic;
}

// FP32 → quint8 with q's grid (values outside its range clamp), keeping a channels-last
// layout. A plain loop: several times faster than at::quantize_per_tensor in 1.13.
at::Tensor Quantize(const at::Tensor& x, const ActQuant& q);
// quint8 → FP32 in the same memory layout (likewise faster than Tensor::dequantize).
at::Tensor Dequantize(const at::Tensor& q);
// Conv (+ ReLU per spec, + pixel shuffle for a deconv) requantized to `out`.
at::Tensor QConv(const at::Tensor& qx, const PackedLayer& layer, const ActQuant& out);
at::Tensor QLinear(const at::Tensor& qx, const PackedLayer& layer, const ActQuant& out);
// FP32 in and out, int8 weights; the input is quantized per call by its own range.
at::Tensor QLinearDynamic(const at::Tensor& x, const PackedLayer& layer);
at::Tensor QAddRelu(const at::Tensor& a, const at::Tensor& b, const ActQuant& out);
at::Tensor QCat(const std::vector<at::Tensor>& xs, int64_t dim, const ActQuant& out);

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_INT8_OPS_H_
