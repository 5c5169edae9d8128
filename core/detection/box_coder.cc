#include "core/detection/box_coder.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/geometry/transform.h"

namespace qv2x {

at::Tensor EncodeBoxes(const at::Tensor& boxes, const at::Tensor& anchors) {
  const auto g = boxes.unbind(-1);
  const auto a = anchors.unbind(-1);
  const at::Tensor diag = torch::sqrt(a[3] * a[3] + a[4] * a[4]);
  return torch::stack(
      {(g[0] - a[0]) / diag, (g[1] - a[1]) / diag, (g[2] - a[2]) / a[5], torch::log(g[3] / a[3]),
       torch::log(g[4] / a[4]), torch::log(g[5] / a[5]), g[6] - a[6]},
      -1);
}

at::Tensor DecodeBoxes(const at::Tensor& deltas, const at::Tensor& anchors) {
  const auto d = deltas.unbind(-1);
  const auto a = anchors.unbind(-1);
  const at::Tensor diag = torch::sqrt(a[3] * a[3] + a[4] * a[4]);
  return torch::stack(
      {d[0] * diag + a[0], d[1] * diag + a[1], d[2] * a[5] + a[2], torch::exp(d[3]) * a[3],
       torch::exp(d[4]) * a[4], torch::exp(d[5]) * a[5], d[6] + a[6]},
      -1);
}

double LimitPeriod(double val, double offset, double period) {
  return val - std::floor(val / period + offset) * period;
}

at::Tensor LimitPeriod(const at::Tensor& val, double offset, double period) {
  return val - torch::floor(val / period + offset) * period;
}

int DirectionBin(double yaw, const DirConfig& dir) {
  const double period = 2 * kPi / dir.num_bins;
  const double rot = LimitPeriod(yaw - dir.dir_offset, 0.0, 2 * kPi);
  const int bin = static_cast<int>(std::floor(rot / period));
  return std::clamp(bin, 0, dir.num_bins - 1);
}

at::Tensor DirectionBins(const at::Tensor& yaw, const DirConfig& dir) {
  const double period = 2 * kPi / dir.num_bins;
  const at::Tensor rot = LimitPeriod(yaw - dir.dir_offset, 0.0, 2 * kPi);
  return torch::floor(rot / period).to(torch::kInt64).clamp(0, dir.num_bins - 1);
}

double ApplyDirectionBin(double yaw, int bin, const DirConfig& dir) {
  const double period = 2 * kPi / dir.num_bins;
  const double fixed = LimitPeriod(yaw - dir.dir_offset, 0.0, period) + dir.dir_offset +
                       period * static_cast<double>(bin);
  return LimitPeriod(fixed, 0.5, 2 * kPi);
}

at::Tensor ApplyDirectionBins(const at::Tensor& yaw, const at::Tensor& bins, const DirConfig& dir) {
  const double period = 2 * kPi / dir.num_bins;
  const at::Tensor fixed = LimitPeriod(yaw - dir.dir_offset, 0.0, period) + dir.dir_offset +
                           period * bins.to(yaw.scalar_type());
  return LimitPeriod(fixed, 0.5, 2 * kPi);
}

}  // namespace qv2x
