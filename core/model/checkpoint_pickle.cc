#include "core/model/checkpoint_pickle.h"

#include <caffe2/serialize/versions.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
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

// Every opcode of pickle protocols 0-5 (a superset of what LibTorch's unpickler accepts,
// so nothing it would read is refused here), by argument layout.
struct Family {
  std::string_view codes;
  Op op;
};
constexpr Family kFamilies[] = {
    {"(.012NRabd}el]ost)uQ\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98",
     {Arg::kNone, 0}},
    {"Khq\x80\x82", {Arg::kFixed, 1}},
    {"M\x83", {Arg::kFixed, 2}},
    {"Jjr\x84", {Arg::kFixed, 4}},
    {"G", {Arg::kFixed, 8}},
    {"UC\x8c\x8a", {Arg::kLength, 1}},
    {"TXB\x8b", {Arg::kLength, 4}},
    {"\x8d\x8e\x96", {Arg::kLength, 8}},
    {"\x95", {Arg::kFrame, 8}},
    {"ILFSVPgp", {Arg::kLine, 0}},
    {"ci", {Arg::kTwoLines, 0}},
};

Op OpOf(uint8_t code) {
  for (const Family& f : kFamilies) {
    if (f.codes.find(static_cast<char>(code)) != std::string_view::npos) return f.op;
  }
  return {};
}

uint64_t Le(std::string_view b, uint64_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}

bool Has(std::string_view b, uint64_t at, uint64_t n) {
  return at <= b.size() && n <= b.size() - at;
}

// How an opcode moves the unpickler's stack (Python's pickletools stack_before/after).
// LibTorch keeps one flat stack with MARK positions in a side list and trusts them: an
// opcode popping below the last MARK, or a MARK opcode whose MARK lies above the stack's
// top, makes it erase a reversed range (ASan: bad free, found by fuzz/checkpoint).
struct Effect {
  int pops = 0, pushes = 1;
  bool to_mark = false;  // takes every value above the last MARK, and the MARK
  int below = 0;         // ... and needs this many values below it, left in place
  bool pairs = false;    // ... which must come in key/value pairs
  int min_items = 0;     // ... at least this many
};

struct Effects {
  std::string_view codes;
  Effect effect;
};
constexpr Effects kEffects[] = {
    {".0", {1, 0}},
    {"\x80\x95", {0, 0}},
    {"2", {1, 2}},
    {"Qpqr\x94\x98\x85", {1, 1}},
    {"Rab\x81\x86\x93", {2, 1}},
    {"s\x87\x92", {3, 1}},
    {"1", {0, 0, true}},
    {"lti\x91", {0, 1, true}},
    {"o", {0, 1, true, 0, false, 1}},
    {"d", {0, 1, true, 0, true}},
    {"e\x90", {0, 0, true, 1}},
    {"u", {0, 0, true, 1, true}},
};

Effect EffectOf(uint8_t code) {
  for (const Effects& f : kEffects) {
    if (f.codes.find(static_cast<char>(code)) != std::string_view::npos) return f.effect;
  }
  return {};  // every other opcode pushes one value
}

absl::Status BadArchive(const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("archive: ", why));
}

// Every record of the archive by its name below the folder of the first record, in lower
// case (LibTorch's own reader looks names up ignoring case); a name seen twice is refused,
// so that no two readers could take different bytes for one record.
absl::StatusOr<std::map<std::string, std::string_view>> ReadRecords(std::string_view b) {
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
  std::map<std::string, std::string_view> out;
  std::string folder;  // "<first record's folder>/", lower case
  uint64_t at = dir;
  for (uint64_t i = 0; i < entries; ++i) {
    if (!Has(b, at, kCentral) || Le(b, at, 4) != 0x02014b50) return BadArchive("directory");
    const uint64_t name_len = Le(b, at + 28, 2), extra_len = Le(b, at + 30, 2);
    if (!Has(b, at + kCentral, name_len + extra_len)) return BadArchive("directory");
    const std::string name = absl::AsciiStrToLower(std::string(b.substr(at + kCentral, name_len)));
    if (i == 0) {
      const size_t slash = name.find('/');
      if (slash == std::string::npos) return BadArchive("the first record is in no folder");
      folder = name.substr(0, slash + 1);
    }
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
    // LibTorch writes every record stored; its reader allocates a compressed record's
    // declared size, however small the file, before inflating it.
    if (Le(b, at + 10, 2) != 0 || packed != size) {
      return BadArchive(absl::StrCat("record ", name.substr(0, 64), " is compressed"));
    }
    if (!Has(b, local, kLocal)) return BadArchive("record header out of bounds");
    const uint64_t data = local + kLocal + Le(b, local + 26, 2) + Le(b, local + 28, 2);
    if (!Has(b, data, size)) return BadArchive("record runs past the end");
    if (name.compare(0, folder.size(), folder) == 0 &&
        !out.emplace(name.substr(folder.size()), b.substr(data, size)).second) {
      return BadArchive(absl::StrCat("record ", name.substr(0, 64), " appears twice"));
    }
    at += kCentral + name_len + extra_len + Le(b, at + 32, 2);
  }
  return out;
}

// The archive's format version, as LibTorch parses it, within what LibTorch reads.
absl::StatusOr<uint64_t> ParseVersion(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && absl::ascii_isspace(static_cast<unsigned char>(text[i]))) ++i;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[i])) && digits < 6;
       ++i, ++digits) {
    v = v * 10 + (text[i] - '0');
  }
  if (digits == 0 || v < caffe2::serialize::kMinSupportedFileFormatVersion ||
      v > caffe2::serialize::kMaxSupportedFileFormatVersion) {
    return BadArchive(absl::StrCat("version \"", std::string(text.substr(0, 16)),
                                   "\" is not one LibTorch reads (",
                                   caffe2::serialize::kMinSupportedFileFormatVersion, " to ",
                                   caffe2::serialize::kMaxSupportedFileFormatVersion, ")"));
  }
  return v;
}

}  // namespace

absl::Status CheckPickle(std::string_view p) {
  uint64_t at = 0, ops = 0;
  int64_t depth = 0;           // values on the stack
  std::vector<int64_t> marks;  // the depth at each open MARK
  for (; at < p.size(); ++ops) {
    const uint64_t start = at;
    const uint8_t code = static_cast<uint8_t>(p[at]);
    const Op op = OpOf(code);
    auto bad = [&](const std::string& what) {
      return absl::InvalidArgumentError(
          absl::StrFormat("pickle opcode 0x%02x at byte %d: %s", code, start, what));
    };
    if (op.arg == Arg::kInvalid) return bad("not a pickle opcode");
    const Effect e = EffectOf(code);
    auto floor = [&] { return marks.empty() ? int64_t{0} : marks.back(); };
    if (code == '(') {
      marks.push_back(depth);
    } else if (e.to_mark) {
      if (marks.empty()) return bad("no MARK to take values from");
      const int64_t items = depth - marks.back();
      depth = marks.back();
      marks.pop_back();
      if (items < e.min_items || (e.pairs && items % 2 != 0) || depth - e.below < floor()) {
        return bad(absl::StrCat(items, " values above the MARK do not fit the opcode"));
      }
      depth += e.pushes;
    } else {
      if (depth - e.pops < floor()) {
        return bad(absl::StrCat("takes ", e.pops, " values, ", depth - floor(), " there"));
      }
      depth += e.pushes - e.pops;
    }
    ++at;
    switch (op.arg) {
      case Arg::kInvalid:
        break;
      case Arg::kNone:
        if (code == '.') return absl::OkStatus();  // STOP: what follows is never read
        break;
      case Arg::kFixed:
        if (!Has(p, at, op.size)) return bad("truncated argument");
        // BINPUT / LONG_BINPUT: LibTorch grows its memo table up to the id it is given;
        // a writer numbers them in order, so no id exceeds the opcodes before it.
        if ((code == 'q' || code == 'r') && Le(p, at, op.size) > ops) {
          return bad(absl::StrCat("memo id ", Le(p, at, op.size), " after ", ops, " opcodes"));
        }
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

absl::StatusOr<ArchiveRecords> ReadArchiveRecords(std::string_view archive) {
  absl::StatusOr<std::map<std::string, std::string_view>> records = ReadRecords(archive);
  if (!records.ok()) return records.status();
  ArchiveRecords out;
  auto take = [&](const std::string& name) -> std::optional<std::string_view> {
    const auto it = records->find(name);
    if (it == records->end()) return std::nullopt;
    return it->second;
  };
  const std::optional<std::string_view> pickle = take("data.pkl");
  if (!pickle) return BadArchive("no data.pkl record");
  // LibTorch prefers .data/version when both exist.
  std::optional<std::string_view> version = take(".data/version");
  if (!version) version = take("version");
  if (!version) return BadArchive("no version record");
  absl::StatusOr<uint64_t> v = ParseVersion(*version);
  if (!v.ok()) return v.status();
  if (absl::Status st = CheckPickle(*pickle); !st.ok()) return st;
  out.pickle = *pickle;
  out.version = *v;
  constexpr std::string_view kData = "data/";
  for (const auto& [name, bytes] : *records) {
    if (name.compare(0, kData.size(), kData) == 0)
      out.data.emplace(name.substr(kData.size()), bytes);
  }
  return out;
}

}  // namespace qv2x
