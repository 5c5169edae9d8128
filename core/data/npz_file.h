// NumPy `.npz` files: a ZIP archive of `.npy` arrays (core/data/npy_array.h), one entry
// `KEY.npy` per key, as np.savez (stored entries) and np.savez_compressed (deflated) write
// them, so that NumPy users can exchange arrays with qv2x without torch. libzip reads the
// container and checks every entry's CRC-32. Torch-free.
#ifndef QV2X_CORE_DATA_NPZ_FILE_H_
#define QV2X_CORE_DATA_NPZ_FILE_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/data/npy_array.h"

namespace qv2x {

using NpzArrays = std::map<std::string, NpyArray>;  // key (entry name without .npy) → array

// The most uncompressed bytes a read accepts in all, checked against the sizes the archive
// claims before anything is allocated.
inline constexpr uint64_t kMaxNpzBytes = uint64_t{4} << 30;

// True when `bytes` start as a ZIP archive whose first entry's name ends in ".npy" (the
// archives torch.save writes start with ".../data.pkl").
bool LooksLikeNpz(const std::string& bytes);

// The arrays of an `.npz` file's bytes. Errors start with `origin` (and name the entry):
// no ZIP, damaged data (CRC), an entry that is no `.npy`, a duplicate key, a refused dtype.
absl::StatusOr<NpzArrays> ParseNpz(const std::string& bytes, const std::string& origin);
absl::StatusOr<NpzArrays> ReadNpz(const std::string& path);

// The `.npz` bytes of `arrays` with stored (uncompressed) entries, as np.savez writes them.
absl::StatusOr<std::string> EncodeNpz(const NpzArrays& arrays);
// EncodeNpz written atomically (core/common/file_util.h WriteFileAtomic).
absl::Status WriteNpz(const std::string& path, const NpzArrays& arrays);

}  // namespace qv2x

#endif  // QV2X_CORE_DATA_NPZ_FILE_H_
