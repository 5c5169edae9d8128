// The detection heads' output for a batch of B frames; channel layout in anchors.h.
#ifndef QV2X_CORE_DETECTION_HEAD_OUTPUTS_H_
#define QV2X_CORE_DETECTION_HEAD_OUTPUTS_H_

#include <ATen/core/Tensor.h>

namespace qv2x {

struct HeadOutputs {
  at::Tensor cls;  // [B, A, H', W']: one sigmoid logit per anchor (or [B, A·C, H', W']: C per
                   // anchor, cls_head class_vector)
  at::Tensor reg;  // [B, 7A, H', W']: channel a * 7 + k, k = dx dy dz dl dw dh dθ
  at::Tensor dir;  // [B, num_bins·A, H', W']: channel a * num_bins + b
};

}  // namespace qv2x

#endif  // QV2X_CORE_DETECTION_HEAD_OUTPUTS_H_
