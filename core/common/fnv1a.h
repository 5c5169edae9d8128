// 64-bit FNV-1a: the content digest of what sender and receiver must hold alike (the
// codebook, the zstd dictionary), printed as 16 hex digits.
#ifndef QV2X_CORE_COMMON_FNV1A_H_
#define QV2X_CORE_COMMON_FNV1A_H_

#include <cstddef>
#include <cstdint>

namespace qv2x {

inline constexpr uint64_t kFnv1aOffset = 1469598103934665603ull;

inline void Fnv1a(uint64_t& h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
}

}  // namespace qv2x

#endif  // QV2X_CORE_COMMON_FNV1A_H_
