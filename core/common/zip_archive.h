// Integrity of the ZIP archives that torch::pickle_save and torch.save write (checkpoints,
// INT8 artifacts). Every record carries a CRC-32, but LibTorch's reader does not check it:
// a flipped bit in a tensor would load silently. This reader walks the central directory
// and checks each record's bounds and CRC before anything is unpickled.
#ifndef QV2X_CORE_COMMON_ZIP_ARCHIVE_H_
#define QV2X_CORE_COMMON_ZIP_ARCHIVE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace qv2x {

// CRC-32 (IEEE 802.3, as ZIP and zlib compute it).
uint32_t Crc32(std::string_view bytes);

struct ZipDamage {
  std::string record;     // name of the first record that fails its check
  std::string_view data;  // its stored bytes (a view into the archive)
};

// OK when `bytes` is a complete ZIP archive whose stored records all match their CRC-32.
// InvalidArgument when it is no complete archive (truncated, or another kind of file),
// DataLoss naming the first damaged record (also returned in `damage` when given).
// Compressed records are bounds-checked only (LibTorch stores every record).
absl::Status VerifyZipArchive(std::string_view bytes, ZipDamage* damage = nullptr);

}  // namespace qv2x

#endif  // QV2X_CORE_COMMON_ZIP_ARCHIVE_H_
