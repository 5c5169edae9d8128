// torch::Tensor <-> NpyArray (core/data/npy_array.h), copying the bytes: the NumPy side of
// the files `qv2x model inputs|forward` read and write (core/model/model_forward.h).
#ifndef QV2X_CORE_MODEL_NPY_TENSOR_H_
#define QV2X_CORE_MODEL_NPY_TENSOR_H_

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "core/data/npy_array.h"

namespace qv2x {

// A row-major CPU tensor of the array's dtype and shape. A column-major (Fortran-order)
// array comes back as the same array, made contiguous. InvalidArgument when `data` does
// not match the shape.
absl::StatusOr<torch::Tensor> NpyToTensor(const NpyArray& array);

// The tensor's elements in row-major order; InvalidArgument for a dtype .npy files here do
// not carry (float16, complex, ...).
absl::StatusOr<NpyArray> TensorToNpy(const torch::Tensor& tensor);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_NPY_TENSOR_H_
