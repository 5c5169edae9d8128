#include "core/data/point_cloud_io.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "lzf.h"

namespace qv2x {
namespace {

struct PcdField {
  std::string name;
  char type = 'F';  // F, U or I
  int size = 4;
  int count = 1;
  int offset = 0;  // bytes into a binary record
  int column = 0;  // first token in an ASCII line
};

struct PcdHeader {
  std::vector<PcdField> fields;
  int64_t points = -1;
  std::string data;
  int record_bytes = 0;
  int record_tokens = 0;
};

// Far above any real sweep, low enough that POINTS x a record's bytes fits in 64 bits.
constexpr int64_t kMaxPoints = int64_t{1} << 36;
constexpr int kMaxRecordBytes = 1 << 20;

absl::Status Bad(const std::string& origin, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", what));
}

bool ValidType(char type, int size) {
  if (type == 'F') return size == 4 || size == 8;
  if (type == 'U' || type == 'I') return size == 1 || size == 2 || size == 4 || size == 8;
  return false;
}

double ReadBinaryValue(const char* p, char type, int size) {
  switch (type) {
    case 'F':
      if (size == 4) {
        float f;
        std::memcpy(&f, p, 4);
        return f;
      } else {
        double d;
        std::memcpy(&d, p, 8);
        return d;
      }
    case 'U': {
      uint64_t v = 0;
      std::memcpy(&v, p, size);  // little-endian hosts
      return static_cast<double>(v);
    }
    default: {
      int64_t v = 0;
      std::memcpy(&v, p, size);
      const int shift = 64 - 8 * size;  // sign-extend
      return static_cast<double>((v << shift) >> shift);
    }
  }
}

// Open3D keeps a point's colour in an `rgb` field whose 32 bits hold 0x00RRGGBB (stored as
// a float or an unsigned int); OPV2V puts the intensity in the red channel.
float IntensityFromRgbBits(uint32_t bits) { return ((bits >> 16) & 0xFFu) / 255.0f; }

// Float or unsigned, the 4 bytes are the same bits.
uint32_t RgbBitsBinary(const char* p) {
  uint32_t bits;
  std::memcpy(&bits, p, 4);
  return bits;
}

absl::StatusOr<uint32_t> RgbBitsAscii(const std::string& token, char type) {
  if (type == 'F') {
    float f;
    if (!absl::SimpleAtof(token, &f)) return absl::InvalidArgumentError(token);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    return bits;
  }
  uint32_t v;
  if (!absl::SimpleAtoi(token, &v)) return absl::InvalidArgumentError(token);
  return v;
}

absl::StatusOr<PcdHeader> ParseHeader(const std::string& bytes, size_t* data_start,
                                      const std::string& origin) {
  PcdHeader h;
  std::vector<std::string> names, types;
  std::vector<int> sizes, counts;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t eol = bytes.find('\n', pos);
    if (eol == std::string::npos) eol = bytes.size();
    std::string line(absl::StripAsciiWhitespace(bytes.substr(pos, eol - pos)));
    pos = eol + 1;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> tok = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    const std::string key = absl::AsciiStrToUpper(tok[0]);
    tok.erase(tok.begin());
    auto ints = [&](std::vector<int>* out) -> absl::Status {
      for (const std::string& t : tok) {
        int v;
        if (!absl::SimpleAtoi(t, &v) || v <= 0)
          return Bad(origin, absl::StrCat(key, ": bad value \"", t, "\""));
        out->push_back(v);
      }
      return absl::OkStatus();
    };
    if (key == "FIELDS") {
      names = tok;
    } else if (key == "SIZE") {
      QV2X_RETURN_IF_ERROR(ints(&sizes));
    } else if (key == "TYPE") {
      types = tok;
    } else if (key == "COUNT") {
      QV2X_RETURN_IF_ERROR(ints(&counts));
    } else if (key == "POINTS") {
      if (tok.size() != 1 || !absl::SimpleAtoi(tok[0], &h.points) || h.points < 0) {
        return Bad(origin, "POINTS: expected a non-negative integer");
      }
    } else if (key == "DATA") {
      if (tok.size() != 1) return Bad(origin, "DATA: expected ascii, binary or binary_compressed");
      h.data = absl::AsciiStrToLower(tok[0]);
      *data_start = pos;
      break;
    }
    // VERSION, WIDTH, HEIGHT and VIEWPOINT do not change how points are read.
  }
  if (h.data.empty()) return Bad(origin, "not a PCD file (no DATA line)");
  if (h.data != "ascii" && h.data != "binary" && h.data != "binary_compressed") {
    return absl::UnimplementedError(absl::StrCat(
        origin, ": PCD DATA ", h.data, " is not supported (ascii, binary or binary_compressed)"));
  }
  if (names.empty()) return Bad(origin, "FIELDS line missing");
  if (counts.empty()) counts.assign(names.size(), 1);
  if (sizes.size() != names.size() || types.size() != names.size() ||
      counts.size() != names.size()) {
    return Bad(origin, "FIELDS, SIZE, TYPE and COUNT disagree on the number of fields");
  }
  if (h.points < 0) return Bad(origin, "POINTS line missing");
  // Sizes below are POINTS x the record size: claims that would overflow them are lies.
  if (h.points > kMaxPoints) {
    return Bad(origin, absl::StrCat("POINTS ", h.points, " is beyond any point cloud"));
  }
  for (size_t i = 0; i < names.size(); ++i) {
    PcdField f;
    f.name = absl::AsciiStrToLower(names[i]);
    f.type = types[i].size() == 1 ? static_cast<char>(absl::ascii_toupper(types[i][0])) : '?';
    f.size = sizes[i];
    f.count = counts[i];
    if (!ValidType(f.type, f.size)) {
      return Bad(origin, absl::StrCat("field ", names[i], ": unsupported TYPE ", types[i],
                                      " with SIZE ", sizes[i]));
    }
    if (f.count > kMaxRecordBytes || h.record_bytes + f.size * f.count > kMaxRecordBytes) {
      return Bad(origin,
                 absl::StrCat("field ", names[i], ": COUNT ", f.count,
                              " makes a point record larger than ", kMaxRecordBytes, " bytes"));
    }
    f.offset = h.record_bytes;
    f.column = h.record_tokens;
    h.record_bytes += f.size * f.count;
    h.record_tokens += f.count;
    h.fields.push_back(f);
  }
  return h;
}

// binary_compressed: two uint32 (compressed and decompressed size), then LZF data that
// decompresses to the fields one after the other (all points' x, then all y, ...).
absl::StatusOr<std::string> DecompressPcdData(const std::string& bytes, size_t data_start,
                                              const PcdHeader& h, const std::string& origin) {
  const uint64_t want = static_cast<uint64_t>(h.points) * h.record_bytes;
  if (bytes.size() < data_start || bytes.size() - data_start < 8) {
    return absl::DataLossError(
        absl::StrCat(origin, ": truncated: binary_compressed data has no size words"));
  }
  uint32_t packed = 0, unpacked = 0;
  std::memcpy(&packed, bytes.data() + data_start, 4);
  std::memcpy(&unpacked, bytes.data() + data_start + 4, 4);
  if (unpacked != want) {
    return Bad(origin,
               absl::StrCat("binary_compressed data decompresses to ", unpacked, " bytes, but ",
                            h.points, " points of ", h.record_bytes, " bytes need ", want));
  }
  if (bytes.size() - data_start - 8 < packed) {
    return absl::DataLossError(absl::StrCat(origin, ": truncated: ", packed,
                                            " bytes of LZF data announced, found ",
                                            bytes.size() - data_start - 8));
  }
  // An LZF back-reference copies at most 264 bytes for 3: a larger claim is a lie, refused
  // before anything is allocated for it.
  if (want > 88 * static_cast<uint64_t>(packed) + 64) {
    return Bad(origin, absl::StrCat(packed, " bytes of LZF data cannot hold ", want, " bytes"));
  }
  std::string out(want, '\0');
  if (want == 0) return out;
  const unsigned got = lzf_decompress(bytes.data() + data_start + 8, packed, out.data(),
                                      static_cast<unsigned>(want));
  if (got != want) {
    return absl::DataLossError(absl::StrCat(origin, ": binary_compressed data is corrupt (LZF ",
                                            got == 0 ? "refused it" : "gave too few bytes", ")"));
  }
  return out;
}

const PcdField* FindField(const PcdHeader& h, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    for (const PcdField& f : h.fields) {
      if (f.name == n) return &f;
    }
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<PointCloud> ParsePcd(const std::string& bytes, const std::string& origin) {
  size_t data_start = 0;
  QV2X_ASSIGN_OR_RETURN(PcdHeader h, ParseHeader(bytes, &data_start, origin));
  const PcdField* fx = FindField(h, {"x"});
  const PcdField* fy = FindField(h, {"y"});
  const PcdField* fz = FindField(h, {"z"});
  if (fx == nullptr || fy == nullptr || fz == nullptr) {
    return Bad(origin, "FIELDS must include x, y and z");
  }
  const PcdField* fi = FindField(h, {"intensity", "i"});
  const PcdField* frgb = fi == nullptr ? FindField(h, {"rgb", "rgba"}) : nullptr;
  if (frgb != nullptr && frgb->size != 4) return Bad(origin, "rgb field must be 4 bytes");

  PointCloud cloud;
  if (h.data == "binary" || h.data == "binary_compressed") {
    std::string unpacked;
    const char* base = bytes.data() + data_start;
    // binary: point-major records; binary_compressed: field-major columns.
    const bool columns = h.data == "binary_compressed";
    if (columns) {
      QV2X_ASSIGN_OR_RETURN(unpacked, DecompressPcdData(bytes, data_start, h, origin));
      base = unpacked.data();
    } else {
      const size_t need = static_cast<size_t>(h.points) * h.record_bytes;
      if (bytes.size() < data_start || bytes.size() - data_start < need) {
        return absl::DataLossError(absl::StrCat(origin, ": truncated: ", h.points, " points need ",
                                                need, " bytes of data, found ",
                                                bytes.size() - std::min(bytes.size(), data_start)));
      }
    }
    auto at = [&](const PcdField* f, int64_t i) {
      return columns ? base + f->offset * h.points + i * f->size * f->count
                     : base + i * h.record_bytes + f->offset;
    };
    cloud.reserve(static_cast<size_t>(h.points));
    for (int64_t i = 0; i < h.points; ++i) {
      Point p;
      p.x = static_cast<float>(ReadBinaryValue(at(fx, i), fx->type, fx->size));
      p.y = static_cast<float>(ReadBinaryValue(at(fy, i), fy->type, fy->size));
      p.z = static_cast<float>(ReadBinaryValue(at(fz, i), fz->type, fz->size));
      if (fi != nullptr) {
        p.intensity = static_cast<float>(ReadBinaryValue(at(fi, i), fi->type, fi->size));
      } else if (frgb != nullptr) {
        p.intensity = IntensityFromRgbBits(RgbBitsBinary(at(frgb, i)));
      }
      if (std::isfinite(p.x) && std::isfinite(p.y) && std::isfinite(p.z)) cloud.push_back(p);
    }
    return cloud;
  }
  // ASCII: one point per line.
  size_t pos = data_start;
  int64_t read = 0;
  while (read < h.points && pos < bytes.size()) {
    size_t eol = bytes.find('\n', pos);
    if (eol == std::string::npos) eol = bytes.size();
    const absl::string_view line =
        absl::StripAsciiWhitespace(absl::string_view(bytes).substr(pos, eol - pos));
    pos = eol + 1;
    if (line.empty()) continue;
    std::vector<std::string> tok = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (static_cast<int>(tok.size()) < h.record_tokens) {
      return Bad(origin, absl::StrCat("point ", read, ": expected ", h.record_tokens,
                                      " values, got ", tok.size()));
    }
    auto num = [&](const PcdField* f, float* out) -> absl::Status {
      const std::string& t = tok[f->column];
      if (absl::AsciiStrToLower(t) == "nan") {
        *out = std::nanf("");
        return absl::OkStatus();
      }
      if (!absl::SimpleAtof(t, out)) {
        return Bad(origin, absl::StrCat("point ", read, ": bad number \"", t, "\""));
      }
      return absl::OkStatus();
    };
    Point p;
    QV2X_RETURN_IF_ERROR(num(fx, &p.x));
    QV2X_RETURN_IF_ERROR(num(fy, &p.y));
    QV2X_RETURN_IF_ERROR(num(fz, &p.z));
    if (fi != nullptr) {
      QV2X_RETURN_IF_ERROR(num(fi, &p.intensity));
    } else if (frgb != nullptr) {
      absl::StatusOr<uint32_t> bits = RgbBitsAscii(tok[frgb->column], frgb->type);
      if (!bits.ok()) {
        return Bad(origin, absl::StrCat("point ", read, ": bad rgb \"", tok[frgb->column], "\""));
      }
      p.intensity = IntensityFromRgbBits(*bits);
    }
    ++read;
    if (std::isfinite(p.x) && std::isfinite(p.y) && std::isfinite(p.z)) cloud.push_back(p);
  }
  if (read < h.points) {
    return absl::DataLossError(
        absl::StrCat(origin, ": truncated: POINTS says ", h.points, ", found ", read));
  }
  return cloud;
}

absl::StatusOr<PointCloud> ReadPcd(const std::string& path) {
  QV2X_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParsePcd(bytes, path);
}

absl::StatusOr<PcdData> ParsePcdData(const std::string& name) {
  if (name == "ascii") return PcdData::kAscii;
  if (name == "binary") return PcdData::kBinary;
  if (name == "binary_compressed") return PcdData::kBinaryCompressed;
  return absl::InvalidArgumentError(
      absl::StrCat("PCD data layout \"", name, "\": expected ascii, binary or binary_compressed"));
}

std::string EncodePcd(const PointCloud& cloud, PcdData data) {
  static constexpr const char* kNames[] = {"ascii", "binary", "binary_compressed"};
  std::string out = absl::StrCat(
      "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z intensity\n"
      "SIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\nWIDTH ",
      cloud.size(), "\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS ", cloud.size(), "\nDATA ",
      kNames[static_cast<int>(data)], "\n");
  if (data == PcdData::kAscii) {
    for (const Point& pt : cloud) {
      absl::StrAppend(&out,
                      absl::StrFormat("%.9g %.9g %.9g %.9g\n", pt.x, pt.y, pt.z, pt.intensity));
    }
    return out;
  }
  // Binary PCD stores values in host order; every platform we build for is little-endian.
  const size_t n = cloud.size();
  std::string values(n * 16, '\0');
  char* p = values.data();
  for (size_t i = 0; i < n; ++i) {
    const Point& pt = cloud[i];
    const float v[4] = {pt.x, pt.y, pt.z, pt.intensity};
    for (int f = 0; f < 4; ++f) {  // binary: records; binary_compressed: columns
      const size_t at = data == PcdData::kBinary ? i * 16 + f * 4 : f * n * 4 + i * 4;
      std::memcpy(p + at, &v[f], 4);
    }
  }
  if (data == PcdData::kBinary) return out + values;
  // LZF gives up (returns 0) when the output would not fit: incompressible data is then
  // stored with a little room to spare, as LZF's literal runs need.
  std::string packed(values.size() + values.size() / 16 + 64, '\0');
  const unsigned size = values.empty()
                            ? 0
                            : lzf_compress(values.data(), static_cast<unsigned>(values.size()),
                                           packed.data(), static_cast<unsigned>(packed.size()));
  const uint32_t sizes[2] = {size, static_cast<uint32_t>(values.size())};
  out.append(reinterpret_cast<const char*>(sizes), 8);
  out.append(packed.data(), size);
  return out;
}

absl::Status WritePcd(const std::string& path, const PointCloud& cloud, PcdData data) {
  return WriteFileAtomic(path, EncodePcd(cloud, data));
}

absl::StatusOr<PointCloud> ParseBin(const std::string& bytes, const std::string& origin) {
  if (bytes.size() % 16 != 0) {
    return absl::DataLossError(absl::StrCat(origin, ": ", bytes.size(),
                                            " bytes is not a whole number of float32 x 4 rows"));
  }
  PointCloud cloud(bytes.size() / 16);
  for (size_t i = 0; i < cloud.size(); ++i) {
    float v[4];
    std::memcpy(v, bytes.data() + i * 16, 16);
    cloud[i] = {v[0], v[1], v[2], v[3]};
  }
  return cloud;
}

absl::StatusOr<PointCloud> ReadBin(const std::string& path) {
  QV2X_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseBin(bytes, path);
}

absl::StatusOr<PointCloud> ReadPointCloud(const std::string& path) {
  if (absl::EndsWith(path, ".pcd")) return ReadPcd(path);
  if (absl::EndsWith(path, ".bin")) return ReadBin(path);
  return absl::InvalidArgumentError(absl::StrCat(path, ": expected a .pcd or .bin file"));
}

}  // namespace qv2x
