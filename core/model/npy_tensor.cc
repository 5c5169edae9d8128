#include "core/model/npy_tensor.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace qv2x {
namespace {

absl::StatusOr<NpyDtype> NpyDtypeOf(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return NpyDtype::kFloat32;
    case torch::kFloat64:
      return NpyDtype::kFloat64;
    case torch::kInt8:
      return NpyDtype::kInt8;
    case torch::kInt16:
      return NpyDtype::kInt16;
    case torch::kInt32:
      return NpyDtype::kInt32;
    case torch::kInt64:
      return NpyDtype::kInt64;
    case torch::kUInt8:
      return NpyDtype::kUInt8;
    case torch::kBool:
      return NpyDtype::kBool;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("dtype ", c10::toString(type), " has no .npy dtype here"));
  }
}

torch::ScalarType TorchTypeOf(NpyDtype dtype) {
  switch (dtype) {
    case NpyDtype::kFloat32:
      return torch::kFloat32;
    case NpyDtype::kFloat64:
      return torch::kFloat64;
    case NpyDtype::kInt8:
      return torch::kInt8;
    case NpyDtype::kInt16:
      return torch::kInt16;
    case NpyDtype::kInt32:
      return torch::kInt32;
    case NpyDtype::kInt64:
      return torch::kInt64;
    case NpyDtype::kUInt8:
      return torch::kUInt8;
    case NpyDtype::kBool:
      return torch::kBool;
  }
  return torch::kFloat32;
}

}  // namespace

absl::StatusOr<torch::Tensor> NpyToTensor(const NpyArray& a) {
  QV2X_ASSIGN_OR_RETURN(const int64_t bytes, NpyByteSize(a.dtype, a.shape));
  if (static_cast<uint64_t>(bytes) != a.data.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("array of ", a.data.size(), " bytes, its shape needs ", bytes));
  }
  std::vector<int64_t> shape = a.shape;
  if (a.fortran_order) std::reverse(shape.begin(), shape.end());
  torch::Tensor t = torch::empty(shape, torch::dtype(TorchTypeOf(a.dtype)));
  if (!a.data.empty()) std::memcpy(t.data_ptr(), a.data.data(), a.data.size());
  // A column-major array is the row-major one of the reversed shape, axes reversed.
  if (a.fortran_order && t.dim() > 1) {
    std::vector<int64_t> axes(t.dim());
    std::iota(axes.rbegin(), axes.rend(), 0);
    t = t.permute(axes).contiguous();
  }
  return t;
}

absl::StatusOr<NpyArray> TensorToNpy(const torch::Tensor& t) {
  NpyArray a;
  QV2X_ASSIGN_OR_RETURN(a.dtype, NpyDtypeOf(t.scalar_type()));
  const torch::Tensor c = t.cpu().contiguous();
  a.shape = c.sizes().vec();
  a.data.assign(static_cast<const char*>(c.data_ptr()), c.nbytes());
  return a;
}

}  // namespace qv2x
