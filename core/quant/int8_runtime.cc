#include "core/quant/int8_runtime.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <utility>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/model/pyramid_fusion.h"
#include "core/model/torch_status.h"
#include "core/quant/int8_model.h"

namespace qv2x::quant {
namespace {

std::vector<int64_t> ExecutedShape(const LayerSpec& l) {
  switch (l.kind) {
    case LayerKind::kLinear:
      return {l.out, l.in};
    case LayerKind::kConv:
      return {l.out, l.in / l.groups, l.kernel, l.kernel};
    case LayerKind::kDeconv:
      return {l.rows(), l.in, 1, 1};
  }
  return {};
}

absl::StatusOr<const Int8Layer*> FindLayer(const Int8Artifact& a, const LayerSpec& spec) {
  auto it = a.layers.find(spec.name);
  if (it == a.layers.end()) {
    return absl::InvalidArgumentError(absl::StrCat("int8 artifact: missing layer ", spec.name));
  }
  if (it->second.shape != ExecutedShape(spec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("int8 artifact: layer ", spec.name, " has shape ",
                     c10::str(at::IntArrayRef(it->second.shape)), ", the config needs ",
                     c10::str(at::IntArrayRef(ExecutedShape(spec)))));
  }
  return &it->second;
}

absl::StatusOr<at::Tensor> FindFp32(const Int8Artifact& a, const std::string& name,
                                    const std::vector<int64_t>& shape) {
  auto it = a.fp32.find(name);
  if (it == a.fp32.end() || it->second.sizes() != at::IntArrayRef(shape)) {
    return absl::InvalidArgumentError(
        absl::StrCat("int8 artifact: missing or mis-shaped FP32 tensor ", name));
  }
  return it->second;
}

absl::Status CheckPillars(const Pillars& p, const StageConfig& cfg) {
  if (p.grid_w != cfg.preprocess.grid_w() || p.grid_h != cfg.preprocess.grid_h()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int8 agent encoder: pillar grid ", p.grid_h, " x ", p.grid_w, " differs from the model's ",
        cfg.preprocess.grid_h(), " x ", cfg.preprocess.grid_w()));
  }
  if (p.num_pillars < 0 || p.max_points <= 0 ||
      p.features.size() != static_cast<size_t>(p.num_pillars) * p.max_points * kNumPointFeatures ||
      p.num_points.size() != static_cast<size_t>(p.num_pillars) ||
      p.coords.size() != 2 * static_cast<size_t>(p.num_pillars)) {
    return absl::InvalidArgumentError("int8 agent encoder: inconsistent Pillars sizes");
  }
  for (int i = 0; i < p.num_pillars; ++i) {
    const int32_t row = p.coords[2 * i], col = p.coords[2 * i + 1];
    if (row < 0 || row >= p.grid_h || col < 0 || col >= p.grid_w || p.num_points[i] < 0 ||
        p.num_points[i] > p.max_points) {
      return absl::InvalidArgumentError(absl::StrCat("int8 agent encoder: pillar ", i,
                                                     " lies outside the grid or has ",
                                                     p.num_points[i], " points"));
    }
  }
  return absl::OkStatus();
}

// dst = max(dst, src) bytewise; SSE2 (every x86-64) 16 bytes at a time.
void MaxInto(uint8_t* __restrict dst, const uint8_t* __restrict src, int64_t n) {
  int64_t i = 0;
#ifdef __SSE2__
  for (; i + 16 <= n; i += 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(dst + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_max_epu8(a, b));
  }
#endif
  for (; i < n; ++i) dst[i] = dst[i] > src[i] ? dst[i] : src[i];
}

}  // namespace

absl::StatusOr<std::shared_ptr<Int8Net>> Int8Net::Create(const Int8Artifact& artifact) {
  std::shared_ptr<Int8Net> net(new Int8Net());
  QV2X_RETURN_IF_ERROR(TorchCall("loading the int8 model", [&] { return net->Init(artifact); }));
  return net;
}

absl::StatusOr<Int8Net::Block> Int8Net::MakeBlock(const BlockSpec& spec, const Int8Artifact& a) {
  auto act = [&](const std::string& name) -> absl::StatusOr<const ActQuant*> {
    if (name.empty()) return nullptr;
    auto it = acts_.find(name);
    if (it == acts_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("int8 artifact: missing activation quantizer ", name));
    }
    return &it->second;
  };
  Block b;
  b.kind = spec.kind;
  for (const LayerSpec& l : spec.layers) {
    QV2X_ASSIGN_OR_RETURN(const Int8Layer* layer, FindLayer(a, l));
    QV2X_ASSIGN_OR_RETURN(PackedLayer p, PackLayer(l, *layer));
    b.layers.push_back(std::move(p));
  }
  if (spec.shortcut) {
    QV2X_ASSIGN_OR_RETURN(const Int8Layer* layer, FindLayer(a, *spec.shortcut));
    QV2X_ASSIGN_OR_RETURN(b.shortcut, PackLayer(*spec.shortcut, *layer));
  }
  QV2X_ASSIGN_OR_RETURN(b.input, act(spec.input_act));
  for (const std::string& n : spec.layer_acts) {
    QV2X_ASSIGN_OR_RETURN(const ActQuant* q, act(n));
    b.layer_acts.push_back(q);
  }
  QV2X_ASSIGN_OR_RETURN(b.shortcut_act, act(spec.shortcut_act));
  QV2X_ASSIGN_OR_RETURN(b.output, act(spec.output_act));
  return b;
}

absl::Status Int8Net::Init(const Int8Artifact& a) {
  QV2X_ASSIGN_OR_RETURN(cfg_, ParseStageConfigString(a.config_yaml));
  QV2X_ASSIGN_OR_RETURN(engine_, SelectInt8Engine());
  const ModelConfig& m = cfg_.model;
  if (m.pillar_vfe.num_filters.size() != 1 || m.backbone.layer_nums.size() != 1) {
    return absl::UnimplementedError("int8 model: one PFN layer and one backbone level only");
  }
  QV2X_RETURN_IF_ERROR(CheckInt8Coverage(cfg_));
  spec_ = MakeModelSpec(cfg_);
  acts_ = a.acts;
  // The grids this CPU's kernels run (int8_ops.h): the PFN canvas below writes levels
  // itself, so every activation is converted here, once.
  for (auto& [name, q] : acts_) q = EngineActQuant(q);
  weight_bytes_ = a.PayloadBytes();

  // PFN: input scaling and quantization are done point by point in PfnCanvas.
  const BlockSpec& pfn = spec_.agent.front();
  QV2X_ASSIGN_OR_RETURN(Block pfn_block, MakeBlock(pfn, a));
  pfn_ = pfn_block.layers.front();
  pfn_in_ = pfn_block.input;
  pfn_out_ = pfn_block.output;
  if (pfn_out_->zero_point != 0) {
    return absl::InvalidArgumentError("int8 artifact: the PFN output must have zero point 0");
  }
  QV2X_ASSIGN_OR_RETURN(at::Tensor d, FindFp32(a, "encoder_m1.input_scale", {kPfnInputs}));
  for (int j = 0; j < kPfnInputs; ++j) {
    pfn_in_mul_.push_back(static_cast<float>(1.0 / (d[j].item<double>() * pfn_in_->scale)));
  }
  QV2X_ASSIGN_OR_RETURN(const Int8Layer* pfn_layer, FindLayer(a, pfn.layers.front()));
  for (int64_t c = 0; c < pfn_layer->rows(); ++c) {
    const double b = std::max(0.0, pfn_layer->bias[c].item<double>());
    pfn_padded_level_.push_back(static_cast<uint8_t>(std::clamp<double>(
        std::nearbyint(b / pfn_out_->scale), 0, static_cast<double>(QMax(pfn_out_->bits)))));
  }
  for (size_t i = 1; i < spec_.agent.size(); ++i) {
    QV2X_ASSIGN_OR_RETURN(Block b, MakeBlock(spec_.agent[i], a));
    backbone_.push_back(std::move(b));
  }
  for (const auto& level : spec_.trunk) {
    trunk_.emplace_back();
    for (const BlockSpec& s : level) {
      QV2X_ASSIGN_OR_RETURN(Block b, MakeBlock(s, a));
      trunk_.back().push_back(std::move(b));
    }
  }
  for (const BlockSpec& s : spec_.deconvs) {
    QV2X_ASSIGN_OR_RETURN(Block b, MakeBlock(s, a));
    deconvs_.push_back(std::move(b));
  }
  QV2X_ASSIGN_OR_RETURN(shrink_, MakeBlock(spec_.shrink, a));
  if (trunk_.empty() || trunk_.front().empty() || trunk_.front().front().input == nullptr ||
      deconvs_.empty()) {
    return absl::InvalidArgumentError("int8 model: empty pyramid");
  }

  // The three heads as one linear over the shrink output's channels.
  Int8Layer heads;
  std::vector<at::Tensor> levels, scale, zp, bias;
  for (const LayerSpec& l : spec_.heads.layers) {
    QV2X_ASSIGN_OR_RETURN(const Int8Layer* h, FindLayer(a, l));
    levels.push_back(h->levels.reshape({l.out, l.in}));
    scale.push_back(h->scale);
    zp.push_back(h->zero_point);
    bias.push_back(h->bias);
    head_rows_.push_back(l.out);
  }
  heads.levels = torch::cat(levels);
  heads.shape = heads.levels.sizes().vec();
  heads.bits = a.layers.at(spec_.heads.layers.front().name).bits;
  heads.scale = torch::cat(scale);
  heads.zero_point = torch::cat(zp);
  heads.bias = torch::cat(bias);
  LayerSpec head_spec = spec_.heads.layers.front();
  head_spec.name = "heads";
  head_spec.kind = LayerKind::kLinear;
  head_spec.out = heads.shape[0];
  QV2X_ASSIGN_OR_RETURN(heads_, PackLayer(head_spec, heads));

  for (size_t l = 0; l < spec_.occupancy_heads.size(); ++l) {
    const std::string& h = spec_.occupancy_heads[l];
    QV2X_ASSIGN_OR_RETURN(at::Tensor w,
                          FindFp32(a, h + ".weight", {1, m.fusion_backbone.num_filters[l], 1, 1}));
    QV2X_ASSIGN_OR_RETURN(at::Tensor b, FindFp32(a, h + ".bias", {1}));
    occupancy_weight_.push_back(w);
    occupancy_bias_.push_back(b);
  }
  if (m.with_codebook) {
    codebook_ = Codebook(m.codebook);
    codebook_->eval();
    torch::NoGradGuard no_grad;
    for (int64_t l = 0; l < codebook_->levels(); ++l) {
      QV2X_ASSIGN_OR_RETURN(at::Tensor c, FindFp32(a, absl::StrCat("codebook.codewords.", l),
                                                   codebook_->level(l).sizes().vec()));
      codebook_->level(l).copy_(c);
    }
    digest_ = codebook_->Digest();
    if (!a.codebook_digest.empty() && a.codebook_digest != digest_) {
      return absl::DataLossError(absl::StrCat("int8 artifact: codebook digest ", digest_,
                                              " differs from the recorded ", a.codebook_digest));
    }
  }
  return absl::OkStatus();
}

at::Tensor Int8Net::RunBlock(const Block& b, const at::Tensor& qx) const {
  at::Tensor h = qx;
  for (size_t i = 0; i < b.layers.size(); ++i) h = QConv(h, b.layers[i], *b.layer_acts[i]);
  if (b.kind != BlockKind::kResidual) return h;
  const at::Tensor sc = b.shortcut ? QConv(qx, *b.shortcut, *b.shortcut_act) : qx;
  return QAddRelu(h, sc, *b.output);
}

at::Tensor Int8Net::PfnCanvas(const Pillars& p) const {
  const int64_t n = p.max_points, c = pfn_.spec.out;
  const int64_t qmax_in = QMax(pfn_in_->bits);
  // Only real points go through the linear: a padded slot's output is ReLU(bias), the
  // same for every pillar, so it enters the max as a precomputed level.
  int64_t total = 0;
  for (int32_t k : p.num_points) total += k;
  // Quantized in place: the int8 linear reads this tensor as it is filled here.
  const at::Tensor qx =
      at::_empty_affine_quantized({total, kPfnInputs}, at::device(at::kCPU).dtype(at::kQUInt8),
                                  pfn_in_->scale, pfn_in_->zero_point);
  uint8_t* xd = reinterpret_cast<uint8_t*>(qx.data_ptr<c10::quint8>());
  const float zp = static_cast<float>(pfn_in_->zero_point);
  const float hi = static_cast<float>(qmax_in) - zp, lo = -zp;
  float mul[kPfnInputs];
  std::copy(pfn_in_mul_.begin(), pfn_in_mul_.end(), mul);
  for (int i = 0; i < p.num_pillars; ++i) {
    const float* src = p.features.data() + static_cast<size_t>(i) * n * kNumPointFeatures;
    for (int k = 0; k < p.num_points[i]; ++k, src += kNumPointFeatures, xd += kPfnInputs) {
      for (int j = 0; j < kPfnInputs; ++j) {
        const float v = std::clamp(src[j] * mul[j], lo, hi);
        xd[j] = static_cast<uint8_t>(RoundHalfEven(v) + zp);
      }
    }
  }
  // The canvas is the quantized map itself: [1, C, H, W] channels-last, i.e. rows of C
  // levels per cell; empty cells hold level 0 = 0.0 (the zero point is 0).
  at::Tensor canvas = at::_empty_affine_quantized(
      {1, c, p.grid_h, p.grid_w}, at::device(at::kCPU).dtype(at::kQUInt8), pfn_out_->scale, 0,
      at::MemoryFormat::ChannelsLast);
  uint8_t* cd = reinterpret_cast<uint8_t*>(canvas.data_ptr<c10::quint8>());
  std::fill(cd, cd + canvas.numel(), uint8_t{0});
  if (total > 0) {
    const at::Tensor y = QLinear(qx, pfn_, *pfn_out_).contiguous();
    const uint8_t* yd = reinterpret_cast<const uint8_t*>(y.data_ptr<c10::quint8>());
    for (int i = 0; i < p.num_pillars; ++i) {
      uint8_t* dst =
          cd + (static_cast<int64_t>(p.coords[2 * i]) * p.grid_w + p.coords[2 * i + 1]) * c;
      if (p.num_points[i] < n) {
        std::copy(pfn_padded_level_.begin(), pfn_padded_level_.end(), dst);
      } else {
        std::fill(dst, dst + c, uint8_t{0});
      }
      for (int k = 0; k < p.num_points[i]; ++k, yd += c) MaxInto(dst, yd, c);
    }
  }
  return canvas;
}

absl::StatusOr<at::Tensor> Int8Net::AgentFeatures(const Pillars& pillars) {
  QV2X_RETURN_IF_ERROR(CheckPillars(pillars, cfg_));
  return TorchCall("int8 agent encoder", [&]() -> absl::StatusOr<at::Tensor> {
    c10::InferenceMode guard;
    at::Tensor q = PfnCanvas(pillars);
    for (const Block& b : backbone_) q = RunBlock(b, q);
    return Dequantize(q);
  });
}

HeadOutput Int8Net::FuseMaps(const std::vector<at::Tensor>& maps, const at::Tensor& warps) const {
  const int64_t n = static_cast<int64_t>(maps.size());
  std::vector<at::Tensor> q;
  for (const at::Tensor& m : maps) {
    q.push_back(Quantize(m, *trunk_[0][0].input));
  }
  HeadOutput out;
  std::vector<at::Tensor> decoded;
  for (size_t l = 0; l < trunk_.size(); ++l) {
    std::vector<at::Tensor> feats, scores, occ;
    for (at::Tensor& a : q) {
      for (const Block& b : trunk_[l]) a = RunBlock(b, a);
      feats.push_back(Dequantize(a));
      occ.push_back(torch::conv2d(feats.back(), occupancy_weight_[l], occupancy_bias_[l]));
      scores.push_back(torch::sigmoid(occ.back()) + 1e-4);
    }
    const at::Tensor fused = WeightedFuse(n == 1 ? feats.front() : torch::cat(feats),
                                          n == 1 ? scores.front() : torch::cat(scores), {n}, warps);
    const Block& d = deconvs_[l];
    decoded.push_back(RunBlock(d, Quantize(fused, *d.input)));
    out.occupancy.push_back((n == 1 ? occ.front() : torch::cat(occ)).contiguous());
  }
  const at::Tensor cat =
      decoded.size() == 1 ? decoded.front() : QCat(decoded, 1, *deconvs_[0].layer_acts[0]);
  const at::Tensor h =
      Dequantize(RunBlock(shrink_, cat.contiguous(at::MemoryFormat::ChannelsLast)));
  const int64_t hh = h.size(2), ww = h.size(3);
  const at::Tensor rows = h.permute({0, 2, 3, 1}).contiguous().view({hh * ww, h.size(1)});
  const at::Tensor y = QLinearDynamic(rows, heads_).view({1, hh, ww, -1}).permute({0, 3, 1, 2});
  out.cls = y.narrow(1, 0, head_rows_[0]).contiguous();
  out.reg = y.narrow(1, head_rows_[0], head_rows_[1]).contiguous();
  out.dir = y.narrow(1, head_rows_[0] + head_rows_[1], head_rows_[2]).contiguous();
  return out;
}

absl::StatusOr<HeadOutput> Int8Net::Fuse(const std::vector<AgentMessage>& agents) {
  if (agents.empty()) return absl::InvalidArgumentError("int8 fusion: no agents in the frame");
  return TorchCall("int8 fusion", [&]() -> absl::StatusOr<HeadOutput> {
    c10::InferenceMode guard;
    std::vector<at::Tensor> maps;
    std::vector<AffineWarp> warps;
    for (size_t i = 0; i < agents.size(); ++i) {
      const AgentMessage& a = agents[i];
      at::Tensor map;
      if (a.indices.defined()) {
        if (!has_codebook()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "int8 fusion: agent ", i, " sent codebook indices to a model without a codebook"));
        }
        absl::StatusOr<at::Tensor> decoded = codebook_->Decode(a.indices.unsqueeze(0));
        if (!decoded.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("int8 fusion: agent ", i, ": ", decoded.status().message()));
        }
        map = *decoded;
      } else if (a.features.defined()) {
        map = a.features.to(torch::kFloat32).unsqueeze(0);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("int8 fusion: agent ", i, " has neither features nor indices"));
      }
      const int64_t channels = spec_.trunk[0][0].layers[0].in;
      if (map.dim() != 4 || map.size(1) != channels ||
          (!maps.empty() && map.sizes() != maps.front().sizes())) {
        return absl::InvalidArgumentError(absl::StrCat("int8 fusion: agent ", i, " map ",
                                                       c10::str(map.sizes()),
                                                       " does not match the model or the ego"));
      }
      maps.push_back(std::move(map));
      warps.push_back(a.warp);
    }
    return FuseMaps(maps, WarpTensor(warps));
  });
}

// Public classes.

Int8AgentEncoder::Int8AgentEncoder(std::shared_ptr<Int8Net> net) : net_(std::move(net)) {}
Int8AgentEncoder::~Int8AgentEncoder() = default;

absl::StatusOr<std::unique_ptr<Int8AgentEncoder>> Int8AgentEncoder::Load(
    const std::string& artifact_path) {
  QV2X_ASSIGN_OR_RETURN(Int8Artifact a, ReadInt8Artifact(artifact_path));
  QV2X_ASSIGN_OR_RETURN(std::shared_ptr<Int8Net> net, Int8Net::Create(a));
  return std::unique_ptr<Int8AgentEncoder>(new Int8AgentEncoder(std::move(net)));
}

absl::StatusOr<at::Tensor> Int8AgentEncoder::EncodeFeatures(const Pillars& pillars) {
  QV2X_ASSIGN_OR_RETURN(at::Tensor f, net_->AgentFeatures(pillars));
  return f[0];
}

absl::StatusOr<at::Tensor> Int8AgentEncoder::EncodeIndices(const Pillars& pillars) {
  if (!net_->has_codebook()) {
    return absl::FailedPreconditionError("int8 agent encoder: the model has no codebook");
  }
  QV2X_ASSIGN_OR_RETURN(at::Tensor f, net_->AgentFeatures(pillars));
  return TorchCall("int8 agent encoder", [&]() -> absl::StatusOr<at::Tensor> {
    c10::InferenceMode guard;
    return net_->Encode(f)[0];
  });
}

const std::string& Int8AgentEncoder::codebook_digest() const { return net_->codebook_digest(); }
int64_t Int8AgentEncoder::weight_bytes() const { return net_->weight_bytes(); }
const StageConfig& Int8AgentEncoder::config() const { return net_->config(); }

Int8EgoFusion::Int8EgoFusion(std::shared_ptr<Int8Net> net) : net_(std::move(net)) {}
Int8EgoFusion::~Int8EgoFusion() = default;

absl::StatusOr<std::unique_ptr<Int8EgoFusion>> Int8EgoFusion::Load(
    const std::string& artifact_path) {
  QV2X_ASSIGN_OR_RETURN(Int8Artifact a, ReadInt8Artifact(artifact_path));
  QV2X_ASSIGN_OR_RETURN(std::shared_ptr<Int8Net> net, Int8Net::Create(a));
  return std::unique_ptr<Int8EgoFusion>(new Int8EgoFusion(std::move(net)));
}

absl::StatusOr<HeadOutput> Int8EgoFusion::Fuse(const std::vector<AgentMessage>& agents) {
  return net_->Fuse(agents);
}

const std::string& Int8EgoFusion::codebook_digest() const { return net_->codebook_digest(); }
int64_t Int8EgoFusion::weight_bytes() const { return net_->weight_bytes(); }
const StageConfig& Int8EgoFusion::config() const { return net_->config(); }

}  // namespace qv2x::quant
