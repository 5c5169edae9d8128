// An operator profile of LibTorch work (`qv2x model forward --profile`): LibTorch's own
// profiler records every operator with its input shapes and, for convolutions and matrix
// products, its FLOPs; this aggregates the records per operator and input shapes into self
// and total time, so that "where the time goes" is a measurement, not a guess.
// Torch-free header.
#ifndef QV2X_CORE_MODEL_OP_PROFILE_H_
#define QV2X_CORE_MODEL_OP_PROFILE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qv2x {

struct OpProfileRow {
  std::string op;       // e.g. aten::mkldnn_convolution
  std::string shapes;   // the tensor inputs' shapes, e.g. [1, 64, 64, 128] [64, 64, 3, 3]
  double calls = 0;     // per run
  double self_ms = 0;   // per run, time in the operator itself (children excluded)
  double total_ms = 0;  // per run, children included
  // Per run, as LibTorch counts it: on the calling op (aten::conv2d, aten::mm, aten::add
  // ...), whose total time the work below it is part of; 0 for ops it does not count.
  double gflop = 0;
};

// Runs `work` `runs` times under the profiler (on the calling thread; intra-op workers run
// inside the operators that spawn them) and returns the rows by descending self time.
// `wall_ms` receives the mean wall time of one run under the profiler.
absl::StatusOr<std::vector<OpProfileRow>> ProfileOps(const std::function<absl::Status()>& work,
                                                     int runs, double* wall_ms);

// The machine's attainable FP32 rate now, as the yardstick for the convolutions' GFLOP/s:
// the best of a few 2048³ single-precision matrix products through LibTorch (its BLAS),
// on LibTorch's intra-op threads.
double MeasureSgemmGflops();

// The rows summed per operator name (self times add up to the profiled time without
// counting a nested op twice), by descending self time.
std::vector<OpProfileRow> ByOpName(const std::vector<OpProfileRow>& rows);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_OP_PROFILE_H_
