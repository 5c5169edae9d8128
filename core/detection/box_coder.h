// Box encoding relative to anchors and the direction-bin rule (SPEC §3; SECOND/OpenCOOD
// residual coder). Boxes are (x, y, z, l, w, h, yaw) in the last dimension.
//
//   dx = (x - xa) / da, dy = (y - ya) / da, da = sqrt(la^2 + wa^2)
//   dz = (z - za) / ha
//   dl = log(l / la), dw = log(w / wa), dh = log(h / ha)
//   dθ = yaw - yaw_a                      (raw; the loss compares it via sin-difference)
#ifndef QV2X_CORE_DETECTION_BOX_CODER_H_
#define QV2X_CORE_DETECTION_BOX_CODER_H_

#include <ATen/core/Tensor.h>

#include "core/config/model_config.h"

namespace qv2x {

inline constexpr int kBoxDims = 7;

// boxes, anchors: [..., 7], same shape and dtype. Returns the targets [..., 7].
at::Tensor EncodeBoxes(const at::Tensor& boxes, const at::Tensor& anchors);
// Inverse of EncodeBoxes (the yaw is anchor + dθ, not yet fixed by a direction bin).
at::Tensor DecodeBoxes(const at::Tensor& deltas, const at::Tensor& anchors);

// val - floor(val / period + offset) * period: maps val into [-offset·period,
// (1 - offset)·period).
double LimitPeriod(double val, double offset, double period);
at::Tensor LimitPeriod(const at::Tensor& val, double offset, double period);

// Direction class of a heading: floor(limit_period(yaw - dir_offset, 0, 2π) / (2π / bins)),
// clamped to [0, bins - 1]. With 2 bins and offset π/4, yaw in [π/4, 5π/4) is bin 0.
int DirectionBin(double yaw, const DirConfig& dir);
at::Tensor DirectionBins(const at::Tensor& yaw, const DirConfig& dir);  // int64, yaw's shape

// Heading with its half-turn ambiguity settled by the direction bin:
// limit_period(yaw - off, 0, P) + off + P·bin with P = 2π / bins, wrapped to [-π, π).
double ApplyDirectionBin(double yaw, int bin, const DirConfig& dir);
at::Tensor ApplyDirectionBins(const at::Tensor& yaw, const at::Tensor& bins, const DirConfig& dir);

}  // namespace qv2x

#endif  // QV2X_CORE_DETECTION_BOX_CODER_H_
