#include "core/data/npy_array.h"

#include <limits>
#include <map>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/status_macros.h"

namespace qv2x {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
// Our headers are ~100 bytes (numpy's own reader stops at 10,000 by default); the cap
// bounds what a garbled length field makes us scan.
constexpr uint32_t kMaxHeaderLen = 65536;
constexpr size_t kMaxDims = 64;  // numpy 2's NPY_MAXDIMS
constexpr char kAccepted[] = "<f4 <f8 <i1 <i2 <i4 <i8 |u1 |b1";

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// The header: a Python dict literal of str keys to str, bool or int-tuple values, as
// numpy's repr writes it. No eval: anything else is an error.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& origin) : s_(text), origin_(origin) {}

  struct Value {
    enum Kind { kString, kBool, kTuple } kind = kString;
    std::string str;
    bool flag = false;
    std::vector<int64_t> ints;
  };

  absl::StatusOr<std::map<std::string, Value>> Dict() {
    std::map<std::string, Value> out;
    SkipSpace();
    if (!Eat('{')) return Error("does not start with '{'");
    SkipSpace();
    while (!Eat('}')) {
      QV2X_ASSIGN_OR_RETURN(std::string key, String());
      SkipSpace();
      if (!Eat(':')) return Error(absl::StrCat("no ':' after key '", key, "'"));
      SkipSpace();
      QV2X_ASSIGN_OR_RETURN(Value v, ParseValue(key));
      if (!out.emplace(key, std::move(v)).second) {
        return Error(absl::StrCat("key '", key, "' appears twice"));
      }
      SkipSpace();
      if (Eat(',')) {
        SkipSpace();
      } else if (Peek() != '}') {
        return Error(absl::StrCat("expected ',' or '}' after key '", key, "'"));
      }
    }
    SkipSpace();
    if (pos_ != s_.size()) return Error("has text after the closing '}'");
    return out;
  }

 private:
  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(origin_, ": .npy header: ", what, " (at byte ", pos_, " of the header)"));
  }
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool Eat(char c) {
    if (pos_ >= s_.size() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  void SkipSpace() {
    while (pos_ < s_.size() &&
           std::string_view(" \t\r\n").find(s_[pos_]) != std::string_view::npos) {
      ++pos_;
    }
  }
  bool EatWord(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }

  absl::StatusOr<std::string> String() {
    const char quote = Peek();
    if (quote != '\'' && quote != '"') return Error("expected a quoted string");
    ++pos_;
    const size_t end = s_.find(quote, pos_);
    if (end == std::string_view::npos) return Error("has an unterminated string");
    std::string out(s_.substr(pos_, end - pos_));
    if (out.find('\\') != std::string::npos) return Error("has a string with an escape");
    pos_ = end + 1;
    return out;
  }

  absl::StatusOr<Value> ParseValue(const std::string& key) {
    Value v;
    const char c = Peek();
    if (c == '\'' || c == '"') {
      QV2X_ASSIGN_OR_RETURN(v.str, String());
    } else if (EatWord("True")) {
      v.kind = Value::kBool;
      v.flag = true;
    } else if (EatWord("False")) {
      v.kind = Value::kBool;
    } else if (Eat('(')) {
      v.kind = Value::kTuple;
      SkipSpace();
      while (!Eat(')')) {
        QV2X_ASSIGN_OR_RETURN(int64_t d, Dim(key));
        v.ints.push_back(d);
        if (v.ints.size() > kMaxDims) return Error(absl::StrCat("'", key, "' has over 64 items"));
        SkipSpace();
        if (Eat(',')) {
          SkipSpace();
        } else if (Peek() != ')') {
          return Error(absl::StrCat("'", key, "': expected ',' or ')'"));
        }
      }
    } else if (c == '[') {
      // descr as a list of fields: a structured (record) array.
      return Error(absl::StrCat("'", key,
                                "' is a list: structured (record) arrays are not read, only "
                                "plain arrays of ",
                                kAccepted));
    } else {
      return Error(absl::StrCat("'", key, "' has a value that is no string, bool or tuple"));
    }
    return v;
  }

  absl::StatusOr<int64_t> Dim(const std::string& key) {
    if (Peek() == '-') return Error(absl::StrCat("'", key, "' has a negative dimension"));
    if (Peek() < '0' || Peek() > '9') return Error(absl::StrCat("'", key, "' holds a non-integer"));
    int64_t d = 0;
    while (Peek() >= '0' && Peek() <= '9') {
      const int digit = Peek() - '0';
      if (d > (std::numeric_limits<int64_t>::max() - digit) / 10) {
        return Error(absl::StrCat("'", key, "' has a dimension beyond int64"));
      }
      d = d * 10 + digit;
      ++pos_;
    }
    Eat('L');  // Python 2's long literals, in files numpy wrote under Python 2
    return d;
  }

  std::string_view s_;
  size_t pos_ = 0;
  const std::string& origin_;
};

absl::StatusOr<NpyDtype> DtypeOf(const std::string& descr, const std::string& origin) {
  auto refuse = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": dtype '", descr, "' ", why));
  };
  if (descr.size() < 2) return refuse(absl::StrCat("is not read (accepted: ", kAccepted, ")"));
  const char order = descr[0];
  const std::string type = descr.substr(1);
  if (type == "O") return refuse("holds Python objects (pickled), which are not read");
  static const std::map<std::string, NpyDtype>* const kTypes = new std::map<std::string, NpyDtype>{
      {"f4", NpyDtype::kFloat32}, {"f8", NpyDtype::kFloat64}, {"i1", NpyDtype::kInt8},
      {"i2", NpyDtype::kInt16},   {"i4", NpyDtype::kInt32},   {"i8", NpyDtype::kInt64},
      {"u1", NpyDtype::kUInt8},   {"b1", NpyDtype::kBool},
  };
  const auto it = kTypes->find(type);
  if (it == kTypes->end() || (order != '<' && order != '>' && order != '|')) {
    return refuse(absl::StrCat("is not read (accepted: ", kAccepted, ")"));
  }
  // One-byte types have no byte order: numpy writes '|', any of the three means the same.
  if (NpyItemSize(it->second) > 1 && order != '<') {
    if (order == '>') {
      return refuse(absl::StrCat("is big-endian; only little-endian arrays are read (numpy: ",
                                 "a.astype('<", type, "'))"));
    }
    return refuse("has no byte order ('|') but a multi-byte type");
  }
  return it->second;
}

uint32_t LittleEndian(const std::string& bytes, size_t at, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

}  // namespace

int NpyItemSize(NpyDtype dtype) {
  switch (dtype) {
    case NpyDtype::kFloat64:
    case NpyDtype::kInt64:
      return 8;
    case NpyDtype::kFloat32:
    case NpyDtype::kInt32:
      return 4;
    case NpyDtype::kInt16:
      return 2;
    case NpyDtype::kInt8:
    case NpyDtype::kUInt8:
    case NpyDtype::kBool:
      return 1;
  }
  return 1;
}

const char* NpyDescr(NpyDtype dtype) {
  switch (dtype) {
    case NpyDtype::kFloat32:
      return "<f4";
    case NpyDtype::kFloat64:
      return "<f8";
    case NpyDtype::kInt8:
      return "|i1";
    case NpyDtype::kInt16:
      return "<i2";
    case NpyDtype::kInt32:
      return "<i4";
    case NpyDtype::kInt64:
      return "<i8";
    case NpyDtype::kUInt8:
      return "|u1";
    case NpyDtype::kBool:
      return "|b1";
  }
  return "?";
}

absl::StatusOr<int64_t> NpyByteSize(NpyDtype dtype, const std::vector<int64_t>& shape) {
  int64_t n = NpyItemSize(dtype);
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("negative dimension in shape ", ShapeText(shape)));
    }
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shape ", ShapeText(shape), " of ", NpyDescr(dtype), " overflows 64-bit byte counts"));
    }
    n *= d;
  }
  return n;
}

absl::StatusOr<NpyArray> ParseNpy(const std::string& bytes, const std::string& origin) {
  auto error = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", what));
  };
  if (bytes.size() < kMagicLen || bytes.compare(0, kMagicLen, kMagic, kMagicLen) != 0) {
    return error("not a .npy array (no \\x93NUMPY magic)");
  }
  if (bytes.size() < 10)
    return error(absl::StrCat("truncated .npy preamble (", bytes.size(), " bytes)"));
  const int major = static_cast<uint8_t>(bytes[6]), minor = static_cast<uint8_t>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0) {
    return error(absl::StrCat(".npy version ", major, ".", minor, " is not read (1.0 to 3.0 are)"));
  }
  // Version 1.0 has a 2-byte header length, 2.0 and 3.0 (UTF-8 header) a 4-byte one.
  const int len_bytes = major == 1 ? 2 : 4;
  const size_t start = 8 + len_bytes;
  if (bytes.size() < start) return error("truncated .npy preamble");
  const uint32_t header_len = LittleEndian(bytes, 8, len_bytes);
  if (header_len > kMaxHeaderLen) {
    return error(absl::StrCat(".npy header of ", header_len, " bytes is too long (at most ",
                              kMaxHeaderLen, ")"));
  }
  if (header_len > bytes.size() - start) {
    return error(absl::StrCat(".npy header of ", header_len, " bytes runs past the end (",
                              bytes.size() - start, " bytes follow the preamble)"));
  }
  HeaderParser parser(std::string_view(bytes).substr(start, header_len), origin);
  QV2X_ASSIGN_OR_RETURN(auto dict, parser.Dict());
  using Value = HeaderParser::Value;
  const auto field = [&](const char* key, Value::Kind kind) -> absl::StatusOr<const Value*> {
    const auto it = dict.find(key);
    if (it == dict.end()) return error(absl::StrCat(".npy header has no '", key, "'"));
    if (it->second.kind != kind) {
      return error(absl::StrCat(".npy header's '", key, "' is not a ",
                                kind == Value::kString ? "string"
                                : kind == Value::kBool ? "bool"
                                                       : "tuple"));
    }
    return &it->second;
  };
  for (const auto& entry : dict) {
    if (entry.first != "descr" && entry.first != "fortran_order" && entry.first != "shape") {
      return error(absl::StrCat(".npy header has an unexpected key '", entry.first, "'"));
    }
  }
  QV2X_ASSIGN_OR_RETURN(const Value* descr, field("descr", Value::kString));
  QV2X_ASSIGN_OR_RETURN(const Value* fortran, field("fortran_order", Value::kBool));
  QV2X_ASSIGN_OR_RETURN(const Value* shape, field("shape", Value::kTuple));
  NpyArray out;
  QV2X_ASSIGN_OR_RETURN(out.dtype, DtypeOf(descr->str, origin));
  out.fortran_order = fortran->flag;
  out.shape = shape->ints;
  absl::StatusOr<int64_t> want = NpyByteSize(out.dtype, out.shape);
  if (!want.ok()) return error(std::string(want.status().message()));
  const size_t data_start = start + header_len;
  const uint64_t have = bytes.size() - data_start;
  if (have != static_cast<uint64_t>(*want)) {
    return error(absl::StrCat("shape ", ShapeText(out.shape), " of ", descr->str, " needs ", *want,
                              " data bytes, the array holds ", have));
  }
  out.data = bytes.substr(data_start);
  if (out.dtype == NpyDtype::kBool) {
    // LibTorch's bool tensors assume 0 or 1.
    for (size_t i = 0; i < out.data.size(); ++i) {
      const uint8_t b = static_cast<uint8_t>(out.data[i]);
      if (b > 1) return error(absl::StrCat("bool element ", i, " is byte ", b, ", not 0 or 1"));
    }
  }
  return out;
}

absl::StatusOr<std::string> EncodeNpy(const NpyArray& array) {
  QV2X_ASSIGN_OR_RETURN(int64_t want, NpyByteSize(array.dtype, array.shape));
  if (static_cast<uint64_t>(want) != array.data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("shape ", ShapeText(array.shape), " of ",
                                                   NpyDescr(array.dtype), " needs ", want,
                                                   " bytes, got ", array.data.size()));
  }
  // Python's repr of the shape tuple: (), (5,), (3, 4).
  std::string shape = absl::StrCat("(", absl::StrJoin(array.shape, ", "));
  if (array.shape.size() == 1) shape += ",";
  shape += ")";
  std::string header = absl::StrCat("{'descr': '", NpyDescr(array.dtype),
                                    "', 'fortran_order': ", array.fortran_order ? "True" : "False",
                                    ", 'shape': ", shape, ", }");
  // Padded with spaces and a newline so that the data starts 64-byte aligned, as numpy does.
  const bool v1 = header.size() + 64 <= 65535;  // padded, it must fit version 1.0's uint16
  const size_t preamble = v1 ? 10 : 12;
  header.append(63 - (preamble + header.size()) % 64, ' ');
  header += '\n';
  std::string out(kMagic, kMagicLen);
  out += static_cast<char>(v1 ? 1 : 2);
  out += '\0';
  const uint32_t len = static_cast<uint32_t>(header.size());
  for (size_t i = 0; i < preamble - 8; ++i) out += static_cast<char>((len >> (8 * i)) & 0xff);
  out.reserve(out.size() + header.size() + array.data.size());
  out += header;
  out += array.data;
  return out;
}

}  // namespace qv2x
