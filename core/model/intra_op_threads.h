// LibTorch's intra-op thread count, for the files that keep LibTorch's headers out (the
// service mains, the fuzzers): <torch/torch.h> costs 40-80 s to compile.
#ifndef QV2X_CORE_MODEL_INTRA_OP_THREADS_H_
#define QV2X_CORE_MODEL_INTRA_OP_THREADS_H_

namespace qv2x {

void SetIntraOpThreads(int n);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_INTRA_OP_THREADS_H_
