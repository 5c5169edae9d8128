#include "core/common/zip_archive.h"

#include <array>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace qv2x {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50, kCentralHeader = 0x02014b50,
                   kEndOfDirectory = 0x06054b50, kZip64Locator = 0x07064b50,
                   kZip64EndOfDirectory = 0x06064b50;
constexpr size_t kEndSize = 22, kLocatorSize = 20, kZip64EndSize = 56, kCentralSize = 46,
                 kLocalSize = 30;

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

// Little-endian fields at `at`, bounds-checked against the whole archive.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool Has(uint64_t at, uint64_t n) const { return at <= b_.size() && n <= b_.size() - at; }
  uint64_t Le(uint64_t at, int n) const {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b_[at + i]);
    return v;
  }
  std::string_view View(uint64_t at, uint64_t n) const { return b_.substr(at, n); }
  size_t size() const { return b_.size(); }

 private:
  std::string_view b_;
};

struct Directory {
  uint64_t entries = 0, offset = 0, size = 0;
};

absl::Status NotAnArchive(const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("not a complete ZIP archive (truncated, or not this kind of file): ", why));
}

absl::StatusOr<Directory> FindDirectory(const Reader& r) {
  if (r.size() < kEndSize) return NotAnArchive(absl::StrCat(r.size(), " bytes"));
  // The end record sits at the very end, followed only by its comment (up to 64 KiB).
  std::optional<uint64_t> end;
  const uint64_t lowest = r.size() - kEndSize > 0xFFFF ? r.size() - kEndSize - 0xFFFF : 0;
  for (uint64_t at = r.size() - kEndSize + 1; at-- > lowest;) {
    if (r.Le(at, 4) == kEndOfDirectory && at + kEndSize + r.Le(at + 20, 2) == r.size()) {
      end = at;
      break;
    }
  }
  if (!end) return NotAnArchive("no end-of-central-directory record");
  Directory d{r.Le(*end + 10, 2), r.Le(*end + 16, 4), r.Le(*end + 12, 4)};
  if (d.entries == 0xFFFF || d.offset == 0xFFFFFFFF || d.size == 0xFFFFFFFF) {
    if (*end < kLocatorSize || r.Le(*end - kLocatorSize, 4) != kZip64Locator) {
      return NotAnArchive("ZIP64 locator missing");
    }
    const uint64_t at = r.Le(*end - kLocatorSize + 8, 8);
    if (!r.Has(at, kZip64EndSize) || r.Le(at, 4) != kZip64EndOfDirectory) {
      return NotAnArchive("ZIP64 end record missing");
    }
    d = {r.Le(at + 32, 8), r.Le(at + 48, 8), r.Le(at + 40, 8)};
  }
  if (!r.Has(d.offset, d.size)) return NotAnArchive("central directory out of bounds");
  return d;
}

}  // namespace

uint32_t Crc32(std::string_view bytes) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : bytes) c = table[(c ^ static_cast<uint8_t>(ch)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

absl::Status VerifyZipArchive(std::string_view bytes, ZipDamage* damage) {
  const Reader r(bytes);
  absl::StatusOr<Directory> dir = FindDirectory(r);
  if (!dir.ok()) return dir.status();
  const uint64_t dir_end = dir->offset + dir->size;
  uint64_t at = dir->offset;
  for (uint64_t i = 0; i < dir->entries; ++i) {
    if (!r.Has(at, kCentralSize) || at + kCentralSize > dir_end || r.Le(at, 4) != kCentralHeader) {
      return NotAnArchive(absl::StrCat("central directory entry ", i, " is damaged"));
    }
    const uint64_t method = r.Le(at + 10, 2), crc = r.Le(at + 16, 4);
    uint64_t packed = r.Le(at + 20, 4), size = r.Le(at + 24, 4), local = r.Le(at + 42, 4);
    const uint64_t name_len = r.Le(at + 28, 2), extra_len = r.Le(at + 30, 2),
                   comment_len = r.Le(at + 32, 2);
    const uint64_t next = at + kCentralSize + name_len + extra_len + comment_len;
    if (next > dir_end) return NotAnArchive(absl::StrCat("central directory entry ", i));
    const std::string name(r.View(at + kCentralSize, name_len));
    // ZIP64 sizes and offset, in this order, for the fields that overflowed.
    for (uint64_t e = at + kCentralSize + name_len;
         e + 4 <= at + kCentralSize + name_len + extra_len;) {
      const uint64_t id = r.Le(e, 2), len = r.Le(e + 2, 2);
      if (id == 0x0001) {
        uint64_t f = e + 4;
        for (uint64_t* v : {&size, &packed, &local}) {
          if (*v != 0xFFFFFFFF) continue;
          if (f + 8 > e + 4 + len || !r.Has(f, 8)) return NotAnArchive(name + ": ZIP64 field");
          *v = r.Le(f, 8);
          f += 8;
        }
      }
      e += 4 + len;
    }
    if (!r.Has(local, kLocalSize) || r.Le(local, 4) != kLocalHeader) {
      return NotAnArchive(absl::StrCat("record ", name, ": local header missing"));
    }
    const uint64_t data = local + kLocalSize + r.Le(local + 26, 2) + r.Le(local + 28, 2);
    if (!r.Has(data, packed)) {
      return NotAnArchive(absl::StrCat("record ", name, " runs past the end of the file"));
    }
    const std::string_view stored = r.View(data, packed);
    if (method == 0 && (packed != size || Crc32(stored) != crc)) {
      if (damage != nullptr) *damage = {name, stored};
      return absl::DataLossError(
          absl::StrCat("record ", name, " fails its CRC-32 check: the file is corrupt"));
    }
    at = next;
  }
  return absl::OkStatus();
}

}  // namespace qv2x
