// Packing of n-bit unsigned integers (n = 1..8) into a little-endian bit stream: value i
// occupies bits [i·n, (i+1)·n) of the stream, bit 0 being the least significant bit of
// byte 0. Weights below 8 bits are stored this way in the INT8 artifact.
#ifndef QV2X_CORE_QUANT_BIT_PACK_H_
#define QV2X_CORE_QUANT_BIT_PACK_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace qv2x::quant {

inline int64_t PackedBytes(int64_t count, int bits) { return (count * bits + 7) / 8; }

// Values must lie in [0, 2^bits); higher bits are dropped.
std::vector<uint8_t> PackBits(const uint8_t* values, int64_t count, int bits);
// InvalidArgument when `packed` is shorter than PackedBytes(count, bits).
absl::StatusOr<std::vector<uint8_t>> UnpackBits(const uint8_t* packed, int64_t packed_size,
                                                int64_t count, int bits);

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_BIT_PACK_H_
