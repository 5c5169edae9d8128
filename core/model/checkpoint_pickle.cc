#include "core/model/checkpoint_pickle.h"

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace qv2x {
namespace {

// How an opcode's argument is laid out (Python's pickletools names).
enum class Arg {
  kNone,
  kFixed,     // `size` bytes
  kLength,    // a little-endian length of `size` bytes, then that many bytes
  kFrame,     // an 8-byte frame length; the frame's opcodes follow inline
  kLine,      // one newline-terminated line
  kTwoLines,  // two newline-terminated lines
  kInvalid,
};

struct Op {
  Arg arg = Arg::kInvalid;
  int size = 0;
};

// Every opcode of pickle protocols 0-5: a superset of what LibTorch's unpickler accepts,
// so nothing it would read is refused here.
Op OpOf(uint8_t code) {
  switch (code) {
    case '(': case '.': case '0': case '1': case '2': case 'N': case 'R': case 'a':
    case 'b': case 'd': case '}': case 'e': case 'l': case ']': case 'o': case 's':
    case 't': case ')': case 'u': case 'Q': case 0x81: case 0x85: case 0x86: case 0x87:
    case 0x88: case 0x89: case 0x8f: case 0x90: case 0x91: case 0x92: case 0x93:
    case 0x94: case 0x97: case 0x98:
      return {Arg::kNone, 0};
    case 0x80: case 'K': case 'h': case 'q': case 0x82:
      return {Arg::kFixed, 1};
    case 'M': case 0x83:
      return {Arg::kFixed, 2};
    case 'J': case 'j': case 'r': case 0x84:
      return {Arg::kFixed, 4};
    case 'G':
      return {Arg::kFixed, 8};
    case 'U': case 0x8c: case 'C': case 0x8a:
      return {Arg::kLength, 1};
    case 'T': case 'X': case 'B': case 0x8b:
      return {Arg::kLength, 4};
    case 0x8d: case 0x8e: case 0x96:
      return {Arg::kLength, 8};
    case 0x95:
      return {Arg::kFrame, 8};
    case 'I': case 'L': case 'F': case 'S': case 'V': case 'P': case 'g': case 'p':
      return {Arg::kLine, 0};
    case 'c': case 'i':
      return {Arg::kTwoLines, 0};
    default:
      return {};
  }
}

uint64_t Le(std::string_view b, uint64_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}

bool Has(std::string_view b, uint64_t at, uint64_t n) { return at <= b.size() && n <= b.size() - at; }

absl::Status BadArchive(const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("archive: ", why));
}

// The stored bytes of the record whose name ends in "/data.pkl" (or is "data.pkl").
absl::StatusOr<std::string_view> PickleRecord(std::string_view b) {
  constexpr uint64_t kEnd = 22, kLocator = 20, kZip64End = 56, kCentral = 46, kLocal = 30;
  if (b.size() < kEnd) return BadArchive("too short");
  std::optional<uint64_t> end;
  for (uint64_t at = b.size() - kEnd + 1; at-- > 0 && b.size() - at <= kEnd + 0xFFFF;) {
    if (Le(b, at, 4) == 0x06054b50 && at + kEnd + Le(b, at + 20, 2) == b.size()) {
      end = at;
      break;
    }
  }
  if (!end) return BadArchive("no end-of-central-directory record");
  uint64_t entries = Le(b, *end + 10, 2), dir = Le(b, *end + 16, 4);
  if (entries == 0xFFFF || dir == 0xFFFFFFFF) {
    if (*end < kLocator || Le(b, *end - kLocator, 4) != 0x07064b50) return BadArchive("ZIP64");
    const uint64_t z = Le(b, *end - kLocator + 8, 8);
    if (!Has(b, z, kZip64End) || Le(b, z, 4) != 0x06064b50) return BadArchive("ZIP64 end");
    entries = Le(b, z + 32, 8);
    dir = Le(b, z + 48, 8);
  }
  uint64_t at = dir;
  for (uint64_t i = 0; i < entries; ++i) {
    if (!Has(b, at, kCentral) || Le(b, at, 4) != 0x02014b50) return BadArchive("directory");
    const uint64_t name_len = Le(b, at + 28, 2), extra_len = Le(b, at + 30, 2);
    if (!Has(b, at + kCentral, name_len + extra_len)) return BadArchive("directory");
    const std::string_view name = b.substr(at + kCentral, name_len);
    constexpr std::string_view kPickle = "/data.pkl";
    if (name == kPickle.substr(1) ||
        (name.size() > kPickle.size() && name.substr(name.size() - kPickle.size()) == kPickle)) {
      uint64_t size = Le(b, at + 24, 4), packed = Le(b, at + 20, 4), local = Le(b, at + 42, 4);
      // ZIP64 extra field: the 8-byte values of the fields that overflowed, in this order.
      for (uint64_t e = at + kCentral + name_len; e + 4 <= at + kCentral + name_len + extra_len;) {
        const uint64_t id = Le(b, e, 2), len = Le(b, e + 2, 2);
        uint64_t f = e + 4;
        if (id == 0x0001) {
          for (uint64_t* v : {&size, &packed, &local}) {
            if (*v != 0xFFFFFFFF || f + 8 > e + 4 + len || !Has(b, f, 8)) continue;
            *v = Le(b, f, 8);
            f += 8;
          }
        }
        e += 4 + len;
      }
      if (packed != size) return BadArchive("the pickle record is compressed");
      if (Le(b, at + 10, 2) != 0) return BadArchive("the pickle record is compressed");
      if (!Has(b, local, kLocal)) return BadArchive("pickle record header");
      const uint64_t data = local + kLocal + Le(b, local + 26, 2) + Le(b, local + 28, 2);
      if (!Has(b, data, size)) return BadArchive("the pickle record runs past the end");
      return b.substr(data, size);
    }
    at += kCentral + name_len + extra_len + Le(b, at + 32, 2);
  }
  return BadArchive("no data.pkl record");
}

}  // namespace

absl::Status CheckPickle(std::string_view p) {
  uint64_t at = 0;
  while (at < p.size()) {
    const uint8_t code = static_cast<uint8_t>(p[at]);
    const Op op = OpOf(code);
    auto bad = [&](const std::string& what) {
      return absl::InvalidArgumentError(
          absl::StrFormat("pickle opcode 0x%02x at byte %d: %s", code, at, what));
    };
    ++at;
    switch (op.arg) {
      case Arg::kInvalid:
        return bad("not a pickle opcode");
      case Arg::kNone:
        if (code == '.') return absl::OkStatus();  // STOP: what follows is never read
        break;
      case Arg::kFixed:
        if (!Has(p, at, op.size)) return bad("truncated argument");
        at += op.size;
        break;
      case Arg::kLength:
      case Arg::kFrame: {
        if (!Has(p, at, op.size)) return bad("truncated length");
        const uint64_t n = Le(p, at, op.size);
        at += op.size;
        // A frame's opcodes are walked like the others; it only has to fit.
        if (!Has(p, at, n)) {
          return bad(absl::StrCat("declares ", n, " bytes, ", p.size() - at, " remain"));
        }
        if (op.arg == Arg::kLength) at += n;
        break;
      }
      case Arg::kLine:
      case Arg::kTwoLines:
        for (int line = 0; line < (op.arg == Arg::kLine ? 1 : 2); ++line) {
          const size_t eol = p.find('\n', at);
          if (eol == std::string_view::npos) return bad("unterminated line");
          at = eol + 1;
        }
        break;
    }
  }
  return absl::InvalidArgumentError("pickle ends without STOP");
}

absl::Status CheckArchivePickle(std::string_view archive) {
  absl::StatusOr<std::string_view> pickle = PickleRecord(archive);
  if (!pickle.ok()) return pickle.status();
  return CheckPickle(*pickle);
}

}  // namespace qv2x
