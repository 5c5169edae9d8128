#include "core/quant/reconstruction.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

namespace qv2x::quant {
namespace {

constexpr size_t kEvalSamples = 4;

int64_t Uniform(std::mt19937_64& rng, int64_t n) {
  return std::uniform_int_distribution<int64_t>(0, n - 1)(rng);
}

// A random training batch: `batch` crops (maps) or pillar subsets (PFN), the same window
// in the FP32 and the quantized input.
std::pair<at::Tensor, at::Tensor> SampleBatch(const SimBlock& block, const ReconData& data,
                                              const PtqOptions& opt, std::mt19937_64& rng) {
  std::vector<at::Tensor> fp, q;
  const int64_t n = static_cast<int64_t>(data.fp_in.size());
  for (int b = 0; b < std::max(1, opt.recon_batch); ++b) {
    int64_t s = Uniform(rng, n);
    // An agent that saw nothing has no pillars: take the next sample that has some.
    for (int64_t k = 0; k < n && data.fp_in[s].numel() == 0; ++k) s = (s + 1) % n;
    const at::Tensor& f = data.fp_in[s];
    const at::Tensor& x = data.q_in[s];
    if (block.spec->kind == BlockKind::kPfn) {
      const int64_t take = std::min<int64_t>(f.size(0), int64_t{opt.recon_crop} * opt.recon_crop);
      const at::Tensor idx = torch::randperm(f.size(0), torch::kLong).narrow(0, 0, take);
      fp.push_back(f.index_select(0, idx));
      q.push_back(x.index_select(0, idx));
      continue;
    }
    // Windows start on the block's stride so that output cells line up with input cells.
    const int64_t st = block.spec->stride();
    auto window = [&](int64_t size) {
      const int64_t c = std::max<int64_t>(st, std::min<int64_t>(size, opt.recon_crop) / st * st);
      const int64_t start = st * Uniform(rng, (size - c) / st + 1);
      return std::pair<int64_t, int64_t>(start, c);
    };
    const auto [y0, h] = window(f.size(2));
    const auto [x0, w] = window(f.size(3));
    fp.push_back(f.narrow(2, y0, h).narrow(3, x0, w));
    q.push_back(x.narrow(2, y0, h).narrow(3, x0, w));
  }
  return {torch::cat(fp).contiguous(), torch::cat(q).contiguous()};
}

double Error(const at::Tensor& out, const at::Tensor& target) {
  return (out - target).pow(2).sum(1).mean().item<double>();
}

}  // namespace

double BlockOutputError(const SimBlock& block, const ReconData& data) {
  torch::NoGradGuard no_grad;
  double total = 0;
  size_t used = 0;
  for (size_t i = 0; i < data.fp_in.size() && used < kEvalSamples; ++i) {
    if (data.fp_in[i].numel() == 0) continue;
    const at::Tensor target = block.Forward(data.fp_in[i], SimCtx::Fp());
    total += Error(block.Forward(data.q_in[i], SimCtx::Quant()), target);
    ++used;
  }
  return used == 0 ? 0 : total / static_cast<double>(used);
}

absl::StatusOr<PtqBlockResult> ReconstructBlock(SimBlock& block, const ReconData& data,
                                                const PtqOptions& opt, std::mt19937_64& rng,
                                                const std::atomic<bool>* cancel) {
  const auto t0 = std::chrono::steady_clock::now();
  PtqBlockResult r;
  r.block = block.spec->name;
  const std::vector<SimLayer*> layers = block.AllLayers();
  for (SimLayer* l : layers) l->levels = at::Tensor();
  r.loss_before = BlockOutputError(block, data);
  const bool any_data = std::any_of(data.fp_in.begin(), data.fp_in.end(),
                                    [](const at::Tensor& t) { return t.numel() > 0; });
  if (!any_data || opt.iters_w <= 0) {
    r.loss_after = r.loss_before;
    return r;
  }
  std::vector<at::Tensor> params;
  for (SimLayer* l : layers) {
    l->v = AdaRoundInit(l->weight, l->wq).requires_grad_(true);
    params.push_back(l->v);
  }
  torch::optim::Adam adam(params, torch::optim::AdamOptions(opt.recon_lr));
  SimCtx train = SimCtx::Quant();
  train.soft = true;
  train.drop = opt.qdrop ? opt.qdrop_prob : 0;
  const int iters = opt.iters_w;
  const double warm = opt.warmup * iters;
  for (int it = 0; it < iters; ++it) {
    if (cancel != nullptr && (it & 31) == 0 && cancel->load()) {
      for (SimLayer* l : layers) l->v = at::Tensor();
      return absl::CancelledError("PTQ cancelled during reconstruction");
    }
    auto [fp_x, q_x] = SampleBatch(block, data, opt, rng);
    at::Tensor target;
    {
      torch::NoGradGuard no_grad;
      target = block.Forward(fp_x, SimCtx::Fp());
    }
    // QDrop also drops the quantization of the block's input.
    if (opt.qdrop) q_x = torch::where(torch::rand_like(q_x) < opt.qdrop_prob, fp_x, q_x);
    const at::Tensor out = block.Forward(q_x, train);
    at::Tensor loss = (out - target).pow(2).sum(1).mean();
    if (it >= warm) {
      // β decays linearly from b_start to b_end after the warm-up (BRECQ's schedule).
      const double rel = (it - warm) / std::max(1.0, iters - warm);
      const double beta = opt.b_end + (opt.b_start - opt.b_end) * std::max(0.0, 1.0 - rel);
      at::Tensor reg = torch::zeros({});
      for (SimLayer* l : layers) reg = reg + AdaRoundRegularizer(l->v, beta);
      loss = loss + opt.round_weight * reg;
    }
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  for (SimLayer* l : layers) {
    l->levels = AdaRoundHardLevels(l->weight, l->wq, l->v.detach());
    l->v = at::Tensor();
  }
  // The learned rounding is kept only when it does not lose to nearest rounding, and the
  // reported error is that of the rounding kept.
  const double learned_loss = BlockOutputError(block, data);
  r.learned = learned_loss <= r.loss_before;
  r.loss_after = r.learned ? learned_loss : r.loss_before;
  if (!r.learned) {
    for (SimLayer* l : layers) l->levels = at::Tensor();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace qv2x::quant
