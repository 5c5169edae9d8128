// One NumPy `.npy` array: the format np.save writes and the entries of an `.npz`
// (core/data/npz_file.h). A 10- or 12-byte preamble ("\x93NUMPY", version, header length),
// a Python dict literal naming dtype, memory order and shape, then the raw bytes. Only the
// plain numeric dtypes LibTorch has are read; the rest is refused by name. Torch-free.
#ifndef QV2X_CORE_DATA_NPY_ARRAY_H_
#define QV2X_CORE_DATA_NPY_ARRAY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qv2x {

// Little-endian '<f4' ... '|b1'.
enum class NpyDtype { kFloat32, kFloat64, kInt8, kInt16, kInt32, kInt64, kUInt8, kBool };

int NpyItemSize(NpyDtype dtype);
const char* NpyDescr(NpyDtype dtype);  // as np.save writes it: "<f4", "|u1", ...

struct NpyArray {
  NpyDtype dtype = NpyDtype::kFloat32;
  std::vector<int64_t> shape;  // empty: a scalar
  // True: `data` runs along the first axis fastest (column-major, as np.asfortranarray
  // saves): read it as the reversed shape, then reverse the axes.
  bool fortran_order = false;
  std::string data;  // product(shape) × itemsize bytes, little-endian
};

// product(shape) × itemsize of `dtype`; InvalidArgument for a negative size or overflow.
absl::StatusOr<int64_t> NpyByteSize(NpyDtype dtype, const std::vector<int64_t>& shape);

// Parses one `.npy` file's bytes. Errors start with `origin` (e.g. "in.npz: entry a.npy").
absl::StatusOr<NpyArray> ParseNpy(const std::string& bytes, const std::string& origin);

// The `.npy` bytes of `array` as np.save writes them (version 1.0, header padded to 64
// bytes); InvalidArgument when `data` does not match the shape.
absl::StatusOr<std::string> EncodeNpy(const NpyArray& array);

}  // namespace qv2x

#endif  // QV2X_CORE_DATA_NPY_ARRAY_H_
