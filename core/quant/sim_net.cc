#include "core/quant/sim_net.h"

#include <torch/torch.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/model/bn_fold.h"
#include "core/model/pyramid_fusion.h"
#include "core/model/torch_status.h"
#include "core/quant/int8_ops.h"

namespace qv2x::quant {
namespace {

namespace F = torch::nn::functional;

using TensorMap = std::map<std::string, at::Tensor>;

absl::StatusOr<at::Tensor> Find(const TensorMap& state, const std::string& name,
                                std::vector<int64_t> shape) {
  auto it = state.find(name);
  if (it == state.end()) return absl::InvalidArgumentError(absl::StrCat("missing tensor ", name));
  if (!shape.empty() && it->second.sizes() != at::IntArrayRef(shape)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", name, " has shape ",
                                                   c10::str(it->second.sizes()), ", expected ",
                                                   c10::str(at::IntArrayRef(shape))));
  }
  return it->second.detach().to(torch::kCPU, torch::kFloat32);
}

absl::StatusOr<SimLayer> FoldLayer(const LayerSpec& spec, const TensorMap& state) {
  std::vector<int64_t> shape;
  switch (spec.kind) {
    case LayerKind::kLinear:
      shape = {spec.out, spec.in};
      break;
    case LayerKind::kConv:
      shape = {spec.out, spec.in / spec.groups, spec.kernel, spec.kernel};
      break;
    case LayerKind::kDeconv:
      shape = {spec.in, spec.out, spec.kernel, spec.kernel};
      break;
  }
  QV2X_ASSIGN_OR_RETURN(at::Tensor w, Find(state, spec.name + ".weight", shape));
  at::Tensor b;
  if (spec.has_bias) {
    QV2X_ASSIGN_OR_RETURN(b, Find(state, spec.name + ".bias", {spec.out}));
  }
  SimLayer layer;
  layer.spec = spec;
  FoldedLayer f{w, b.defined() ? b : torch::zeros({spec.out})};
  if (!spec.bn.empty()) {
    BnParams bn;
    bn.eps = spec.bn_eps;
    QV2X_ASSIGN_OR_RETURN(bn.weight, Find(state, spec.bn + ".weight", {spec.out}));
    QV2X_ASSIGN_OR_RETURN(bn.bias, Find(state, spec.bn + ".bias", {spec.out}));
    QV2X_ASSIGN_OR_RETURN(bn.running_mean, Find(state, spec.bn + ".running_mean", {spec.out}));
    QV2X_ASSIGN_OR_RETURN(bn.running_var, Find(state, spec.bn + ".running_var", {spec.out}));
    f = FoldBatchNorm(w, b, bn, spec.kind == LayerKind::kDeconv ? 1 : 0);
  }
  if (spec.kind == LayerKind::kDeconv) f = DeconvAsConv1x1(f.weight, f.bias);
  layer.weight = f.weight.contiguous();
  layer.bias = f.bias.contiguous();
  return layer;
}

}  // namespace

at::Tensor SimLayer::Levels() const {
  if (levels.defined()) return levels;
  return WeightLevels(weight, wq);
}

at::Tensor SimLayer::Weight(const SimCtx& ctx) const {
  if (!ctx.quant_w) return weight;
  if (ctx.soft && v.defined()) return DequantizeWeight(AdaRoundSoftLevels(weight, wq, v), wq);
  if (v.defined()) return DequantizeWeight(AdaRoundHardLevels(weight, wq, v), wq);
  return DequantizeWeight(Levels(), wq);
}

at::Tensor SimLayer::Forward(const at::Tensor& x, const SimCtx& ctx) const {
  const at::Tensor w = Weight(ctx);
  at::Tensor y = spec.kind == LayerKind::kLinear
                     ? torch::linear(x, w, bias)
                     : torch::conv2d(x, w, bias, spec.kind == LayerKind::kDeconv ? 1 : spec.stride,
                                     spec.kind == LayerKind::kDeconv ? 0 : spec.padding, 1,
                                     spec.kind == LayerKind::kDeconv ? 1 : spec.groups);
  if (spec.relu) y = torch::relu(y);
  if (spec.kind == LayerKind::kDeconv && spec.stride > 1) y = torch::pixel_shuffle(y, spec.stride);
  return y;
}

at::Tensor ApplyAct(SimAct* act, const at::Tensor& x, const SimCtx& ctx) {
  if (act == nullptr) return x;
  if (ctx.observe) act->obs.Add(x);
  if (!ctx.quant_a) return x;
  // The grid this machine's integer kernels use (7 bits where they need the reduced range).
  const at::Tensor q = FakeQuantAct(x, EngineActQuant(act->q));
  if (ctx.drop <= 0) return q;
  return torch::where(torch::rand_like(x) < ctx.drop, x, q);
}

std::vector<SimLayer*> SimBlock::AllLayers() const {
  std::vector<SimLayer*> out = layers;
  if (shortcut != nullptr) out.push_back(shortcut);
  return out;
}

at::Tensor SimBlock::Forward(const at::Tensor& x, const SimCtx& ctx) const {
  switch (spec->kind) {
    case BlockKind::kPfn: {
      // Padded point slots are zero and stay zero through the scaling and the quantizer
      // (0 is always on the grid), so, as in the FP32 model, they enter the max as
      // ReLU(bias).
      const int64_t p = x.size(0), n = x.size(1);
      at::Tensor in = x * pfn_inv_scale.view({1, 1, -1});
      in = ApplyAct(input_act, in, ctx);
      at::Tensor y = layers[0]->Forward(in.reshape({p * n, in.size(2)}), ctx);
      y = y.view({p, n, y.size(1)}).amax(1);
      // Quantizing before or after the max is the same (monotonic); after is cheaper.
      return ApplyAct(output_act, y, ctx);
    }
    case BlockKind::kResidual: {
      const at::Tensor in = ApplyAct(input_act, x, ctx);
      at::Tensor h = in;
      for (size_t i = 0; i < layers.size(); ++i) {
        h = ApplyAct(layer_acts[i], layers[i]->Forward(h, ctx), ctx);
      }
      const at::Tensor sc =
          shortcut != nullptr ? ApplyAct(shortcut_act, shortcut->Forward(in, ctx), ctx) : in;
      return ApplyAct(output_act, torch::relu(h + sc), ctx);
    }
    case BlockKind::kDeconv:
    case BlockKind::kSequential: {
      at::Tensor h = ApplyAct(input_act, x, ctx);
      for (size_t i = 0; i < layers.size(); ++i) {
        h = ApplyAct(layer_acts[i], layers[i]->Forward(h, ctx), ctx);
      }
      return h;
    }
    case BlockKind::kHeads: {
      std::vector<at::Tensor> outs;
      for (SimLayer* l : layers) outs.push_back(l->Forward(x, ctx));
      return torch::cat(outs, 1);
    }
  }
  return x;
}

absl::StatusOr<std::unique_ptr<SimNet>> SimNet::Build(const StageConfig& cfg,
                                                      const NamedTensors& state) {
  std::unique_ptr<SimNet> net(new SimNet());
  QV2X_RETURN_IF_ERROR(TorchCall("folding the model", [&] { return net->Init(cfg, state); }));
  return net;
}

absl::StatusOr<SimBlock> SimNet::MakeBlock(const BlockSpec& spec, const TensorMap& state) {
  SimBlock b;
  b.spec = &spec;
  auto act = [&](const std::string& name) -> SimAct* {
    return name.empty() ? nullptr : &acts[name];
  };
  auto layer = [&](const LayerSpec& l) -> absl::StatusOr<SimLayer*> {
    QV2X_ASSIGN_OR_RETURN(SimLayer folded, FoldLayer(l, state));
    auto [it, inserted] = layers.emplace(l.name, std::move(folded));
    return &it->second;
  };
  for (const LayerSpec& l : spec.layers) {
    QV2X_ASSIGN_OR_RETURN(SimLayer * p, layer(l));
    b.layers.push_back(p);
  }
  if (spec.shortcut) {
    QV2X_ASSIGN_OR_RETURN(b.shortcut, layer(*spec.shortcut));
  }
  b.input_act = act(spec.input_act);
  for (const std::string& a : spec.layer_acts) b.layer_acts.push_back(act(a));
  b.shortcut_act = act(spec.shortcut_act);
  b.output_act = act(spec.output_act);
  if (spec.kind == BlockKind::kPfn) b.pfn_inv_scale = torch::ones({kPfnInputs});
  return b;
}

absl::Status SimNet::Init(const StageConfig& cfg, const NamedTensors& state) {
  const ModelConfig& m = cfg.model;
  if (m.pillar_vfe.num_filters.size() != 1 || m.backbone.layer_nums.size() != 1) {
    return absl::UnimplementedError(
        "PTQ supports one PFN layer and a single-level BEV backbone (every preset has them)");
  }
  for (int s : m.fusion_backbone.upsample_strides) {
    if (s < 1) return absl::InvalidArgumentError("upsample_strides must be positive");
  }
  QV2X_RETURN_IF_ERROR(CheckInt8Coverage(cfg));
  cfg_ = cfg;
  spec_ = MakeModelSpec(cfg);
  TensorMap map;
  for (const auto& [name, t] : state) map[name] = t;
  for (const BlockSpec& s : spec_.agent) {
    QV2X_ASSIGN_OR_RETURN(SimBlock b, MakeBlock(s, map));
    agent.push_back(b);
  }
  for (const auto& level : spec_.trunk) {
    trunk.emplace_back();
    for (const BlockSpec& s : level) {
      QV2X_ASSIGN_OR_RETURN(SimBlock b, MakeBlock(s, map));
      trunk.back().push_back(b);
    }
  }
  for (const BlockSpec& s : spec_.deconvs) {
    QV2X_ASSIGN_OR_RETURN(SimBlock b, MakeBlock(s, map));
    deconvs.push_back(b);
  }
  QV2X_ASSIGN_OR_RETURN(shrink, MakeBlock(spec_.shrink, map));
  QV2X_ASSIGN_OR_RETURN(heads, MakeBlock(spec_.heads, map));
  for (size_t l = 0; l < spec_.occupancy_heads.size(); ++l) {
    const std::string& h = spec_.occupancy_heads[l];
    const int64_t c = m.fusion_backbone.num_filters[l];
    QV2X_ASSIGN_OR_RETURN(at::Tensor w, Find(map, h + ".weight", {1, c, 1, 1}));
    QV2X_ASSIGN_OR_RETURN(at::Tensor b, Find(map, h + ".bias", {1}));
    occupancy_weight.push_back(w);
    occupancy_bias.push_back(b);
  }
  if (m.with_codebook) {
    codebook = Codebook(m.codebook);
    codebook->eval();
    torch::NoGradGuard no_grad;
    for (int64_t l = 0; l < codebook->levels(); ++l) {
      const std::string name = absl::StrCat("codebook.codewords.", l);
      QV2X_ASSIGN_OR_RETURN(at::Tensor c, Find(map, name, codebook->level(l).sizes().vec()));
      codebook->level(l).copy_(c);
    }
  }
  pfn_scale_ = torch::ones({kPfnInputs});
  return absl::OkStatus();
}

void SimNet::SetPfnInputScale(const at::Tensor& d) {
  torch::NoGradGuard no_grad;
  SimLayer& l = *agent.front().layers[0];
  // Undo the previous scale, apply the new one: W' = W · diag(d).
  l.weight = (l.weight / pfn_scale_.view({1, -1}) * d.view({1, -1})).contiguous();
  pfn_scale_ = d.to(torch::kFloat32).contiguous();
  agent.front().pfn_inv_scale = 1.0 / pfn_scale_;
}

void SimNet::FitQuantizers(int bits_w, int bits_a, ScaleMethod method) {
  for (auto& [name, l] : layers) l.wq = FitWeightQuant(l.weight, bits_w, method);
  for (auto& [name, a] : acts) a.q = FitActQuant(a.obs, bits_a, method);
}

at::Tensor SimNet::AgentForward(const PillarBatch& batch, const SimCtx& ctx) {
  const at::Tensor pf = agent.front().Forward(batch.features, ctx);
  at::Tensor x = ScatterAgentToBev(pf, batch, 0);
  for (size_t i = 1; i < agent.size(); ++i) x = agent[i].Forward(x, ctx);
  return x;
}

std::pair<at::Tensor, at::Tensor> SimNet::EncodeDecode(const at::Tensor& features) {
  if (codebook.is_empty()) return {at::Tensor(), features};
  at::Tensor idx = codebook->Encode(features);
  return {idx, codebook->DecodeUnchecked(idx)};
}

at::Tensor SimNet::TrunkLevelScore(int64_t level, const at::Tensor& feature) const {
  return torch::sigmoid(torch::conv2d(feature, occupancy_weight[level], occupancy_bias[level])) +
         1e-4;
}

at::Tensor SimNet::Fuse(int64_t level, const std::vector<at::Tensor>& feats,
                        const at::Tensor& warps) {
  std::vector<at::Tensor> scores;
  for (const at::Tensor& f : feats) scores.push_back(TrunkLevelScore(level, f));
  const int64_t n = static_cast<int64_t>(feats.size());
  return WeightedFuse(torch::cat(feats), torch::cat(scores), {n}, warps);
}

SimHeads SimNet::EgoForward(const std::vector<at::Tensor>& maps, const at::Tensor& warps,
                            const SimCtx& ctx) {
  std::vector<at::Tensor> x = maps;
  std::vector<at::Tensor> decoded;
  for (size_t l = 0; l < trunk.size(); ++l) {
    for (at::Tensor& a : x) {
      for (const SimBlock& b : trunk[l]) a = b.Forward(a, ctx);
    }
    decoded.push_back(deconvs[l].Forward(Fuse(static_cast<int64_t>(l), x, warps), ctx));
  }
  const at::Tensor h = shrink.Forward(torch::cat(decoded, 1), ctx);
  const at::Tensor out = heads.Forward(h, ctx);
  const int64_t a = heads.layers[0]->spec.out, r = heads.layers[1]->spec.out;
  SimHeads o;
  o.cls = out.narrow(1, 0, a);
  o.reg = out.narrow(1, a, r);
  o.dir = out.narrow(1, a + r, out.size(1) - a - r);
  return o;
}

}  // namespace qv2x::quant
