#include "core/quant/int8_ops.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "absl/strings/str_cat.h"
#include "core/model/torch_status.h"

namespace qv2x::quant {
namespace {

using Stack = std::vector<c10::IValue>;

const c10::OperatorHandle& Op(const char* name, const char* overload) {
  // Looked up once per op; the dispatcher's tables live for the process.
  static std::mutex mu;
  static std::map<std::string, c10::OperatorHandle> ops;
  std::lock_guard<std::mutex> lock(mu);
  const std::string key = absl::StrCat(name, ".", overload);
  auto it = ops.find(key);
  if (it == ops.end()) {
    it = ops.emplace(key, c10::Dispatcher::singleton().findSchemaOrThrow(name, overload)).first;
  }
  return it->second;
}

c10::IValue Call(const char* name, const char* overload, Stack stack) {
  Op(name, overload).callBoxed(&stack);
  return std::move(stack.front());
}

// Below 8 bits the kernels still requantize onto 0..255: clamp to the b-bit range.
at::Tensor ClampBits(const at::Tensor& q, const ActQuant& out) {
  if (out.bits >= 8) return q;
  return at::clamp(q, out.lo(), out.hi());
}

c10::List<int64_t> Pair(int64_t v) { return c10::List<int64_t>({v, v}); }

}  // namespace

bool Int8NeedsReducedRange() {
  static const bool reduce = [] {
    if (const char* env = std::getenv("QV2X_INT8_REDUCE_RANGE"); env != nullptr && *env != 0) {
      return std::string(env) != "0";
    }
#if defined(__x86_64__) || defined(__i386__)
    // clang 14 knows no "avxvnni" for __builtin_cpu_supports: read CPUID leaf 7 directly, and
    // XCR0 for whether the OS saves the ymm / zmm state the VNNI kernels need.
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || (c & (1u << 27)) == 0) return true;  // no OSXSAVE
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    const bool os_ymm = (xcr0_lo & 0x6u) == 0x6u;
    const bool os_zmm = (xcr0_lo & 0xe6u) == 0xe6u;
    const bool avx512_vnni =
        os_zmm && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 11)) != 0;
    const bool avx_vnni = os_ymm && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)) != 0;
    return !(avx512_vnni || avx_vnni);
#else
    return false;
#endif
  }();
  return reduce;
}

ActQuant EngineActQuant(const ActQuant& q) {
  if (q.bits != 8 || !Int8NeedsReducedRange()) return q;
  return ActQuantFromRange(q.lo(), q.hi(), 7);
}

absl::StatusOr<std::string> SelectInt8Engine() {
  const auto& engines = at::globalContext().supportedQEngines();
  for (at::QEngine e : {at::QEngine::ONEDNN, at::QEngine::QNNPACK}) {
    if (std::find(engines.begin(), engines.end(), e) != engines.end()) {
      if (at::globalContext().qEngine() != e) at::globalContext().setQEngine(e);
      return std::string(c10::toString(e));
    }
  }
  return absl::UnimplementedError("this LibTorch has no ONEDNN or QNNPACK quantized engine");
}

at::Tensor Int8Weight(const Int8Layer& layer) {
  std::vector<int64_t> row_shape(layer.shape.size(), 1);
  row_shape[0] = layer.rows();
  const at::Tensor w =
      (layer.levels.to(torch::kInt16) - layer.zero_point.to(torch::kInt16).view(row_shape))
          .to(torch::kInt8);
  return at::_make_per_channel_quantized_tensor(w, layer.scale.to(torch::kFloat64),
                                                torch::zeros({layer.rows()}, torch::kInt64), 0);
}

absl::StatusOr<PackedLayer> PackLayer(const LayerSpec& spec, const Int8Layer& layer) {
  return TorchCall("packing int8 weights", [&]() -> absl::StatusOr<PackedLayer> {
    PackedLayer p;
    p.spec = spec;
    const at::Tensor qw = Int8Weight(layer);
    const c10::optional<at::Tensor> bias = layer.bias;
    if (spec.kind == LayerKind::kLinear) {
      p.packed = Call("quantized::linear_prepack", "", {qw, bias});
    } else {
      const bool deconv = spec.kind == LayerKind::kDeconv;
      p.packed = Call("quantized::conv2d_prepack", "",
                      {qw, bias, Pair(deconv ? 1 : spec.stride), Pair(deconv ? 0 : spec.padding),
                       Pair(1), deconv ? int64_t{1} : spec.groups});
    }
    return p;
  });
}

at::Tensor Quantize(const at::Tensor& x, const ActQuant& act) {
  const ActQuant q = EngineActQuant(act);
  const at::MemoryFormat fmt =
      x.dim() == 4 ? x.suggest_memory_format() : at::MemoryFormat::Contiguous;
  const at::Tensor in = x.to(at::kFloat).contiguous(fmt);
  at::Tensor out = at::_empty_affine_quantized(in.sizes(), at::device(at::kCPU).dtype(at::kQUInt8),
                                               q.scale, q.zero_point, fmt);
  const float* __restrict src = in.data_ptr<float>();
  uint8_t* __restrict dst = reinterpret_cast<uint8_t*>(out.data_ptr<c10::quint8>());
  const float inv = static_cast<float>(1.0 / q.scale), zp = static_cast<float>(q.zero_point);
  const float lo = -zp, hi = static_cast<float>(QMax(q.bits)) - zp;
  const int64_t n = in.numel();
  for (int64_t i = 0; i < n; ++i) {
    const float v = std::min(std::max(src[i] * inv, lo), hi);
    dst[i] = static_cast<uint8_t>(RoundHalfEven(v) + zp);
  }
  return out;
}

at::Tensor Dequantize(const at::Tensor& q) {
  const at::MemoryFormat fmt =
      q.dim() == 4 ? q.suggest_memory_format() : at::MemoryFormat::Contiguous;
  const at::Tensor in = q.contiguous(fmt);
  at::Tensor out = at::empty(in.sizes(), at::device(at::kCPU).dtype(at::kFloat).memory_format(fmt));
  const uint8_t* __restrict src = reinterpret_cast<const uint8_t*>(in.data_ptr<c10::quint8>());
  float* __restrict dst = out.data_ptr<float>();
  const float scale = static_cast<float>(in.q_scale());
  const float zp = static_cast<float>(in.q_zero_point());
  const int64_t n = in.numel();
  for (int64_t i = 0; i < n; ++i) dst[i] = (static_cast<float>(src[i]) - zp) * scale;
  return out;
}

at::Tensor QConv(const at::Tensor& qx, const PackedLayer& layer, const ActQuant& act) {
  const ActQuant out = EngineActQuant(act);
  at::Tensor y = Call(layer.spec.relu ? "quantized::conv2d_relu" : "quantized::conv2d", "new",
                      {qx, layer.packed, out.scale, out.zero_point})
                     .toTensor();
  if (layer.spec.kind == LayerKind::kDeconv && layer.spec.stride > 1) {
    y = at::pixel_shuffle(y, layer.spec.stride);
  }
  return ClampBits(y, out);
}

at::Tensor QLinear(const at::Tensor& qx, const PackedLayer& layer, const ActQuant& act) {
  const ActQuant out = EngineActQuant(act);
  const at::Tensor y = Call(layer.spec.relu ? "quantized::linear_relu" : "quantized::linear", "",
                            {qx, layer.packed, out.scale, out.zero_point})
                           .toTensor();
  return ClampBits(y, out);
}

at::Tensor QLinearDynamic(const at::Tensor& x, const PackedLayer& layer) {
  return Call("quantized::linear_dynamic", "", {x, layer.packed, Int8NeedsReducedRange()})
      .toTensor();
}

at::Tensor QAddRelu(const at::Tensor& a, const at::Tensor& b, const ActQuant& act) {
  const ActQuant out = EngineActQuant(act);
  return ClampBits(Call("quantized::add_relu", "", {a, b, out.scale, out.zero_point}).toTensor(),
                   out);
}

at::Tensor QCat(const std::vector<at::Tensor>& xs, int64_t dim, const ActQuant& act) {
  const ActQuant out = EngineActQuant(act);
  return ClampBits(Call("quantized::cat", "",
                        {c10::List<at::Tensor>(xs), dim, c10::optional<double>(out.scale),
                         c10::optional<int64_t>(out.zero_point)})
                       .toTensor(),
                   out);
}

}  // namespace qv2x::quant
