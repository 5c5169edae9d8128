#include "core/model/npy_tensor.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace qv2x {
namespace {

// The dtypes both sides have, as pairs.
constexpr std::pair<NpyDtype, torch::ScalarType> kDtypes[] = {
    {NpyDtype::kFloat32, torch::kFloat32}, {NpyDtype::kFloat64, torch::kFloat64},
    {NpyDtype::kInt8, torch::kInt8},       {NpyDtype::kInt16, torch::kInt16},
    {NpyDtype::kInt32, torch::kInt32},     {NpyDtype::kInt64, torch::kInt64},
    {NpyDtype::kUInt8, torch::kUInt8},     {NpyDtype::kBool, torch::kBool}};

absl::StatusOr<NpyDtype> NpyDtypeOf(torch::ScalarType type) {
  for (const auto& [npy, torch_type] : kDtypes) {
    if (torch_type == type) return npy;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("dtype ", c10::toString(type), " has no .npy dtype here"));
}

torch::ScalarType TorchTypeOf(NpyDtype dtype) {
  for (const auto& [npy, torch_type] : kDtypes) {
    if (npy == dtype) return torch_type;
  }
  return torch::kFloat32;  // not reached: every NpyDtype is in the table
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
