#include "core/model/pillar_encoder.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <limits>
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

// Inference: each pillar's valid points through the folded linear, the max and min over
// points kept per unit as they come, without the [pillars · max_points, units] product
// of the batched path (most slots are padding: about 7 of 32 points per pillar here).
torch::Tensor FoldedPillarKernel(const torch::Tensor& x, const torch::Tensor& num_points,
                                 const torch::Tensor& weight, const torch::Tensor& scale,
                                 const torch::Tensor& shift) {
  const int64_t p = x.size(0), n = x.size(1), in = x.size(2), units = weight.size(0);
  const torch::Tensor xc = x.contiguous();
  const torch::Tensor counts = num_points.to(torch::kInt32).contiguous();
  const torch::Tensor wt = weight.t().contiguous();  // [in, units]: units innermost
  const torch::Tensor sc = scale.contiguous(), sh = shift.contiguous();
  torch::Tensor out = torch::empty({p, units}, x.options());
  const float* xp = xc.data_ptr<float>();
  const int32_t* np = counts.data_ptr<int32_t>();
  const float* w = wt.data_ptr<float>();
  const float* scp = sc.data_ptr<float>();
  const float* shp = sh.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, p, 256, [&](int64_t begin, int64_t end) {
    std::vector<float> z(units), hi(units), lo(units);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t count = std::clamp<int64_t>(np[i], 0, n);
      // Padded slots are zero points, whose product is 0: they take part in the max and min.
      const float pad_hi = count < n ? 0.f : -std::numeric_limits<float>::infinity();
      const float pad_lo = count < n ? 0.f : std::numeric_limits<float>::infinity();
      std::fill(hi.begin(), hi.end(), pad_hi);
      std::fill(lo.begin(), lo.end(), pad_lo);
      for (int64_t k = 0; k < count; ++k) {
        const float* pt = xp + (i * n + k) * in;
        std::fill(z.begin(), z.end(), 0.f);
        for (int64_t f = 0; f < in; ++f) {
          const float v = pt[f];
          const float* wr = w + f * units;
          for (int64_t u = 0; u < units; ++u) z[u] += v * wr[u];
        }
        for (int64_t u = 0; u < units; ++u) {
          hi[u] = std::max(hi[u], z[u]);
          lo[u] = std::min(lo[u], z[u]);
        }
      }
      float* o = op + i * units;
      for (int64_t u = 0; u < units; ++u) {
        // BatchNorm's scale may be negative: the larger of the two ends after it.
        const float a = shp[u] + hi[u] * scp[u], b = shp[u] + lo[u] * scp[u];
        o[u] = std::max(std::max(a, b), 0.f);
      }
    }
  });
  return out;
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
  const bool needs_grad =
      torch::GradMode::is_enabled() && (x.requires_grad() || linear->weight.requires_grad() ||
                                        norm->weight.requires_grad() || norm->bias.requires_grad());
  if (!needs_grad && x.scalar_type() == torch::kFloat32 && x.device().is_cpu()) {
    return FoldedPillarKernel(x, num_points, linear->weight, scale, shift);
  }
  const torch::Tensor w_t = linear->weight.t();
  std::vector<torch::Tensor> parts;
  // About 8 MiB of point features per chunk.
  const int64_t chunk = std::max<int64_t>(1, 32768 / std::max<int64_t>(n, 1));
  const torch::Tensor slots = torch::arange(n, num_points.options()).unsqueeze(0);
  for (int64_t s = 0; s < p; s += chunk) {
    const int64_t c = std::min(chunk, p - s);
    const torch::Tensor mask = (slots < num_points.narrow(0, s, c).unsqueeze(1)).unsqueeze(2);
    const torch::Tensor xm = x.narrow(0, s, c) * mask.to(x.scalar_type());
    const torch::Tensor z = torch::mm(xm.view({c * n, in}), w_t);
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
