#include "fuzz/zip_crc_fixup.h"

#include <string_view>

#include "core/common/zip_archive.h"

// Provided by libFuzzer; absent (null) in the replay programs, which never mutate.
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size)
    __attribute__((weak));

namespace qv2x::fuzz {
namespace {

uint64_t Le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void PutLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

void FixZipCrcs(uint8_t* data, size_t size) {
  constexpr size_t kEnd = 22, kCentral = 46, kLocal = 30;
  if (size < kEnd) return;
  size_t end = size - kEnd;
  while (Le(data + end, 4) != 0x06054b50) {
    if (end-- == 0) return;
  }
  const uint64_t entries = Le(data + end + 10, 2), dir = Le(data + end + 16, 4);
  if (entries == 0xFFFF || dir == 0xFFFFFFFF) return;  // ZIP64
  uint64_t at = dir;
  for (uint64_t i = 0; i < entries; ++i) {
    if (at > size || size - at < kCentral || Le(data + at, 4) != 0x02014b50) return;
    const uint64_t method = Le(data + at + 10, 2), packed = Le(data + at + 20, 4),
                   local = Le(data + at + 42, 4);
    const uint64_t next =
        at + kCentral + Le(data + at + 28, 2) + Le(data + at + 30, 2) + Le(data + at + 32, 2);
    if (local <= size && size - local >= kLocal && method == 0) {
      const uint64_t start = local + kLocal + Le(data + local + 26, 2) + Le(data + local + 28, 2);
      if (start <= size && packed <= size - start) {
        const std::string_view stored(reinterpret_cast<const char*>(data + start), packed);
        PutLe32(data + at + 16, Crc32(stored));
      }
    }
    at = next;
  }
}

}  // namespace qv2x::fuzz

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  size = LLVMFuzzerMutate(data, size, max_size);
  if (seed & 1) qv2x::fuzz::FixZipCrcs(data, size);
  return size;
}
