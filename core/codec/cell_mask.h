// The cell mask of a sparse index map (issue 13, Where2comm-style selection): one bit per
// cell of the [h, w] map, set for a cell the sender sends, row-major, least significant bit
// first, zero padding. The receiver treats an unsent cell as empty (kUnsentIndex).
#ifndef QV2X_CORE_CODEC_CELL_MASK_H_
#define QV2X_CORE_CODEC_CELL_MASK_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace qv2x::codec {

// Bytes of the packed mask of `cells` cells.
inline uint64_t MaskBytes(int64_t cells) { return (static_cast<uint64_t>(cells) + 7) / 8; }

// `mask`: one flag per cell, nonzero = sent.
std::string PackMask(const std::vector<uint8_t>& mask);

// Unpacks MaskBytes(cells) bytes into one 0/1 flag per cell. DataLoss for a wrong length or
// nonzero padding bits; `sent` counts the cells set.
absl::Status UnpackMask(std::string_view packed, int64_t cells, std::vector<uint8_t>* mask,
                        int64_t* sent);

}  // namespace qv2x::codec

#endif  // QV2X_CORE_CODEC_CELL_MASK_H_
