#include "core/quant/bit_pack.h"

#include "absl/strings/str_cat.h"

namespace qv2x::quant {

std::vector<uint8_t> PackBits(const uint8_t* values, int64_t count, int bits) {
  std::vector<uint8_t> out(PackedBytes(count, bits), 0);
  if (bits == 8) {
    out.assign(values, values + count);
    return out;
  }
  const uint32_t mask = (1u << bits) - 1;
  int64_t bit = 0;
  for (int64_t i = 0; i < count; ++i, bit += bits) {
    // A value spans at most two bytes (bits <= 8).
    const uint32_t v = (values[i] & mask) << (bit & 7);
    out[bit >> 3] |= static_cast<uint8_t>(v);
    if ((bit & 7) + bits > 8) out[(bit >> 3) + 1] |= static_cast<uint8_t>(v >> 8);
  }
  return out;
}

absl::StatusOr<std::vector<uint8_t>> UnpackBits(const uint8_t* packed, int64_t packed_size,
                                                int64_t count, int bits) {
  if (bits < 1 || bits > 8) return absl::InvalidArgumentError(absl::StrCat("bits = ", bits));
  if (count < 0 || packed_size < PackedBytes(count, bits)) {
    return absl::InvalidArgumentError(absl::StrCat("packed weights: ", packed_size,
                                                   " bytes hold fewer than ", count, " values of ",
                                                   bits, " bits"));
  }
  std::vector<uint8_t> out(count);
  if (bits == 8) {
    out.assign(packed, packed + count);
    return out;
  }
  const uint32_t mask = (1u << bits) - 1;
  int64_t bit = 0;
  for (int64_t i = 0; i < count; ++i, bit += bits) {
    uint32_t v = packed[bit >> 3];
    if ((bit & 7) + bits > 8) v |= static_cast<uint32_t>(packed[(bit >> 3) + 1]) << 8;
    out[i] = static_cast<uint8_t>((v >> (bit & 7)) & mask);
  }
  return out;
}

}  // namespace qv2x::quant
