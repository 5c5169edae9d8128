#include "core/model/intra_op_threads.h"

#include <ATen/Parallel.h>

namespace qv2x {

void SetIntraOpThreads(int n) { at::set_num_threads(n); }

}  // namespace qv2x
