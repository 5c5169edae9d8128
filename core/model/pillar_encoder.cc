#include "core/model/pillar_encoder.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace qv2x {
namespace {

namespace nn = torch::nn;

torch::Tensor CellIndex(const Pillars& p) {
  auto coords =
      torch::from_blob(const_cast<int32_t*>(p.coords.data()), {p.num_pillars, 2}, torch::kInt32)
          .to(torch::kInt64);
  return coords.select(1, 0) * p.grid_w + coords.select(1, 1);
}

}  // namespace

PillarBatch MakePillarBatch(const std::vector<const Pillars*>& agents) {
  PillarBatch b;
  if (agents.empty()) return b;
  const Pillars& first = *agents.front();
  b.grid_h = first.grid_h;
  b.grid_w = first.grid_w;
  const int64_t n = first.max_points;
  const int64_t f = kNumPointFeatures;
  if (agents.size() == 1) {
    b.features = torch::from_blob(const_cast<float*>(first.features.data()),
                                  {first.num_pillars, n, f}, torch::kFloat32);
    b.num_points = torch::from_blob(const_cast<int32_t*>(first.num_points.data()),
                                    {first.num_pillars}, torch::kInt32);
    b.cell = CellIndex(first);
    b.pillars_per_agent = {first.num_pillars};
    return b;
  }
  int64_t total = 0;
  for (const Pillars* p : agents) total += p->num_pillars;
  b.features = torch::empty({total, n, f}, torch::kFloat32);
  b.num_points = torch::empty({total}, torch::kInt32);
  std::vector<torch::Tensor> cells;
  float* fdst = b.features.data_ptr<float>();
  int32_t* ndst = b.num_points.data_ptr<int32_t>();
  for (const Pillars* p : agents) {
    std::memcpy(fdst, p->features.data(), sizeof(float) * p->num_pillars * n * f);
    std::memcpy(ndst, p->num_points.data(), sizeof(int32_t) * p->num_pillars);
    fdst += p->num_pillars * n * f;
    ndst += p->num_pillars;
    cells.push_back(CellIndex(*p));
    b.pillars_per_agent.push_back(p->num_pillars);
  }
  b.cell = torch::cat(cells);
  return b;
}

PfnLayerImpl::PfnLayerImpl(int64_t in, int64_t out, bool last_layer, double eps, double momentum)
    : last_(last_layer) {
  const int64_t units = last_layer ? out : out / 2;
  linear = register_module("linear", nn::Linear(nn::LinearOptions(in, units).bias(false)));
  norm = register_module(
      "norm", nn::BatchNorm1d(nn::BatchNorm1dOptions(units).eps(eps).momentum(momentum)));
}

torch::Tensor PfnLayerImpl::forward(const torch::Tensor& x) {
  const auto p = x.size(0), n = x.size(1);
  torch::Tensor y = linear(x.reshape({p * n, x.size(2)}));
  y = norm(y).relu_().view({p, n, y.size(1)});
  // amax, unlike max(dim), computes no indices (several times faster here).
  torch::Tensor y_max = y.amax(1);
  if (last_) return y_max;
  return torch::cat({y, y_max.unsqueeze(1).expand({p, n, y_max.size(1)})}, 2);
}

torch::Tensor PfnLayerImpl::ForwardFolded(const torch::Tensor& x, const torch::Tensor& num_points) {
  const int64_t p = x.size(0), n = x.size(1), in = x.size(2);
  const int64_t units = linear->weight.size(0);
  const auto& bn = norm->options;
  const torch::Tensor scale = norm->weight / torch::sqrt(norm->running_var + bn.eps());
  const torch::Tensor shift = norm->bias - norm->running_mean * scale;
  const torch::Tensor w_t = linear->weight.t();
  std::vector<torch::Tensor> parts;
  // About 8 MiB of point features per chunk, reused across chunks.
  const int64_t chunk = std::max<int64_t>(1, 32768 / std::max<int64_t>(n, 1));
  const bool needs_grad =
      torch::GradMode::is_enabled() && (x.requires_grad() || linear->weight.requires_grad() ||
                                        norm->weight.requires_grad() || norm->bias.requires_grad());
  torch::Tensor z_buf;
  if (!needs_grad) z_buf = torch::empty({std::min(chunk, p) * n, units}, x.options());
  const torch::Tensor slots = torch::arange(n, num_points.options()).unsqueeze(0);
  for (int64_t s = 0; s < p; s += chunk) {
    const int64_t c = std::min(chunk, p - s);
    const torch::Tensor mask = (slots < num_points.narrow(0, s, c).unsqueeze(1)).unsqueeze(2);
    const torch::Tensor xm = x.narrow(0, s, c) * mask.to(x.scalar_type());
    torch::Tensor z;
    if (needs_grad) {  // out= variants are not differentiable
      z = torch::mm(xm.view({c * n, in}), w_t);
    } else {
      z = z_buf.narrow(0, 0, c * n);
      torch::mm_out(z, xm.view({c * n, in}), w_t);
    }
    const torch::Tensor z3 = z.view({c, n, units});
    const torch::Tensor hi = torch::addcmul(shift, z3.amax(1), scale);
    const torch::Tensor lo = torch::addcmul(shift, z3.amin(1), scale);
    parts.push_back(torch::maximum(hi, lo).relu_());
  }
  if (parts.empty()) return torch::empty({0, units}, x.options());
  return parts.size() == 1 ? parts.front() : torch::cat(parts);
}

PillarVfeImpl::PillarVfeImpl(const PillarVfeConfig& cfg, int64_t in_features) {
  pfn_layers = register_module("pfn_layers", nn::ModuleList());
  int64_t in = in_features;
  const size_t layers = cfg.num_filters.size();
  for (size_t i = 0; i < layers; ++i) {
    const bool last = i + 1 == layers;
    pfn_layers->push_back(PfnLayer(in, cfg.num_filters[i], last, cfg.bn_eps, cfg.bn_momentum));
    in = cfg.num_filters[i];
  }
  out_channels_ = in;
}

torch::Tensor PillarVfeImpl::forward(const torch::Tensor& features,
                                     const torch::Tensor& num_points) {
  if (!is_training() && pfn_layers->size() == 1) {
    return pfn_layers[0]->as<PfnLayerImpl>()->ForwardFolded(features, num_points);
  }
  // Zero the padded slots: Pillars promises it, but features may come from elsewhere.
  const auto slots = torch::arange(features.size(1), num_points.options());
  const auto mask = slots.unsqueeze(0) < num_points.unsqueeze(1);
  torch::Tensor x = features * mask.unsqueeze(2).to(features.scalar_type());
  for (const auto& layer : *pfn_layers) x = layer->as<PfnLayerImpl>()->forward(x);
  return x;
}

torch::Tensor ScatterToBev(const torch::Tensor& pillar_features, const PillarBatch& batch) {
  const int64_t c = pillar_features.size(1);
  const int64_t cells = batch.grid_h * batch.grid_w;
  torch::Tensor canvas = torch::zeros({batch.num_agents(), c, cells}, pillar_features.options());
  int64_t offset = 0;
  for (int64_t a = 0; a < batch.num_agents(); ++a) {
    const int64_t count = batch.pillars_per_agent[a];
    if (count > 0) {
      canvas[a].index_copy_(1, batch.cell.narrow(0, offset, count),
                            pillar_features.narrow(0, offset, count).t());
    }
    offset += count;
  }
  return canvas.view({batch.num_agents(), c, batch.grid_h, batch.grid_w});
}

torch::Tensor ScatterAgentToBev(const torch::Tensor& pillar_features, const PillarBatch& batch,
                                int64_t agent) {
  int64_t offset = 0;
  for (int64_t a = 0; a < agent; ++a) offset += batch.pillars_per_agent[a];
  const int64_t count = batch.pillars_per_agent[agent];
  const int64_t c = pillar_features.size(1);
  // Rows of a [H·W, C] canvas: copying whole pillar rows is cheaper than a strided
  // scatter, and the [1, C, H, W] view of it is channels-last, the layout oneDNN's convs
  // run fastest in.
  torch::Tensor canvas = torch::zeros({batch.grid_h * batch.grid_w, c}, pillar_features.options());
  if (count > 0) {
    canvas.index_copy_(0, batch.cell.narrow(0, offset, count),
                       pillar_features.narrow(0, offset, count));
  }
  return canvas.view({1, batch.grid_h, batch.grid_w, c}).permute({0, 3, 1, 2});
}

PointPillarEncoderImpl::PointPillarEncoderImpl(const PillarVfeConfig& cfg) {
  pillar_vfe = register_module("pillar_vfe", PillarVfe(cfg, kNumPointFeatures));
}

torch::Tensor PointPillarEncoderImpl::forward(const PillarBatch& batch) {
  return ScatterToBev(pillar_vfe(batch.features, batch.num_points), batch);
}

}  // namespace qv2x
