#include "core/codec/index_codec.h"

#include <zstd.h>

#include <cmath>

#include "absl/strings/str_cat.h"

namespace qv2x::codec {
namespace {

absl::Status CheckGrid(const IndexGrid& g) {
  if (g.levels <= 0 || g.height <= 0 || g.width <= 0 || g.dict_size <= 1 || g.dict_size > 65536) {
    return absl::InvalidArgumentError(absl::StrCat("bad index grid ", g.levels, "x", g.height, "x",
                                                   g.width, " with ", g.dict_size, " codes"));
  }
  // Keeps every size computation below far from overflow.
  if (g.cells() > (int64_t{1} << 31)) {
    return absl::InvalidArgumentError(absl::StrCat("index grid of ", g.cells(), " cells"));
  }
  return absl::OkStatus();
}

std::string PackBits(const std::vector<int32_t>& v, int bits) {
  std::string out((v.size() * bits + 7) / 8, '\0');
  uint64_t acc = 0;
  int filled = 0;
  size_t pos = 0;
  for (int32_t x : v) {
    acc |= static_cast<uint64_t>(x) << filled;
    filled += bits;
    while (filled >= 8) {
      out[pos++] = static_cast<char>(acc & 0xff);
      acc >>= 8;
      filled -= 8;
    }
  }
  if (filled > 0) out[pos] = static_cast<char>(acc & 0xff);
  return out;
}

absl::Status UnpackBits(std::string_view in, int bits, int64_t n, std::vector<int32_t>* out) {
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  out->resize(n);
  uint64_t acc = 0;
  int filled = 0;
  size_t pos = 0;
  for (int64_t i = 0; i < n; ++i) {
    while (filled < bits) {
      acc |= static_cast<uint64_t>(static_cast<uint8_t>(in[pos++])) << filled;
      filled += 8;
    }
    (*out)[i] = static_cast<int32_t>(acc & mask);
    acc >>= bits;
    filled -= bits;
  }
  // The packer writes zero padding; anything else means the stream is not what it claims.
  if (acc != 0) return absl::DataLossError("nonzero padding bits after the last index");
  return absl::OkStatus();
}

absl::Status CheckRange(const std::vector<int32_t>& v, int64_t dict_size) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] < 0 || v[i] >= dict_size) {
      return absl::OutOfRangeError(absl::StrCat(
          "index ", v[i], " at position ", i, " is outside the codebook's ", dict_size, " codes"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* EncodingName(IndexEncoding e) { return e == IndexEncoding::kZstd ? "zstd" : "bitpack"; }

absl::StatusOr<IndexEncoding> ParseEncoding(std::string_view name) {
  if (name == "bitpack") return IndexEncoding::kBitpack;
  if (name == "zstd") return IndexEncoding::kZstd;
  return absl::InvalidArgumentError(absl::StrCat("unknown index encoding \"", std::string(name),
                                                 "\" (expected bitpack or zstd)"));
}

int BitsPerIndex(int64_t dict_size) {
  int bits = 1;
  while ((int64_t{1} << bits) < dict_size) ++bits;
  return bits;
}

int SymbolBytes(int64_t dict_size) { return dict_size <= 256 ? 1 : 2; }

absl::StatusOr<EncodedIndices> EncodeIndices(const std::vector<int32_t>& indices,
                                             const IndexGrid& grid, const EncodeOptions& options) {
  if (absl::Status st = CheckGrid(grid); !st.ok()) return st;
  if (static_cast<int64_t>(indices.size()) != grid.cells()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", grid.cells(), " indices, got ", indices.size()));
  }
  if (absl::Status st = CheckRange(indices, grid.dict_size); !st.ok()) return st;
  EncodedIndices out;
  out.encoding = options.encoding;
  if (options.encoding == IndexEncoding::kBitpack) {
    out.bits_per_index = BitsPerIndex(grid.dict_size);
    out.payload = PackBits(indices, out.bits_per_index);
    return out;
  }
  const int sym = SymbolBytes(grid.dict_size);
  std::string raw(indices.size() * sym, '\0');
  for (size_t i = 0; i < indices.size(); ++i) {
    raw[i * sym] = static_cast<char>(indices[i] & 0xff);
    if (sym == 2) raw[i * sym + 1] = static_cast<char>((indices[i] >> 8) & 0xff);
  }
  out.decoded_bytes = raw.size();
  out.payload.resize(ZSTD_compressBound(raw.size()));
  const size_t n = ZSTD_compress(out.payload.data(), out.payload.size(), raw.data(), raw.size(),
                                 options.zstd_level);
  if (ZSTD_isError(n)) {
    return absl::InternalError(absl::StrCat("zstd: ", ZSTD_getErrorName(n)));
  }
  out.payload.resize(n);
  return out;
}

absl::Status DecodeIndices(const EncodedView& in, const IndexGrid& grid, const DecodeLimits& limits,
                           std::vector<int32_t>* out) {
  if (absl::Status st = CheckGrid(grid); !st.ok()) return st;
  const int64_t n = grid.cells();
  if (in.encoding == IndexEncoding::kBitpack) {
    const int bits = BitsPerIndex(grid.dict_size);
    if (in.bits_per_index != bits) {
      return absl::InvalidArgumentError(absl::StrCat("bits_per_index ", in.bits_per_index,
                                                     ", expected ", bits, " for ", grid.dict_size,
                                                     " codes"));
    }
    const uint64_t want = (static_cast<uint64_t>(n) * bits + 7) / 8;
    if (want > limits.max_decoded_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "index map of ", want, " bytes exceeds the limit of ", limits.max_decoded_bytes));
    }
    if (in.payload.size() != want) {
      return absl::DataLossError(absl::StrCat("payload is ", in.payload.size(), " bytes, a ", bits,
                                              "-bit map of ", n, " indices takes ", want));
    }
    if (absl::Status st = UnpackBits(in.payload, bits, n, out); !st.ok()) return st;
    return CheckRange(*out, grid.dict_size);
  }

  const int sym = SymbolBytes(grid.dict_size);
  const uint64_t want = static_cast<uint64_t>(n) * sym;
  if (in.decoded_bytes != want) {
    return absl::InvalidArgumentError(absl::StrCat("decoded size ", in.decoded_bytes,
                                                   " does not match the grid's ", want, " bytes"));
  }
  if (want > limits.max_decoded_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("decoded size ", want, " exceeds the limit of ", limits.max_decoded_bytes));
  }
  // The frame header's own size claim must agree before anything is allocated for it.
  const unsigned long long framed = ZSTD_getFrameContentSize(in.payload.data(), in.payload.size());
  if (framed == ZSTD_CONTENTSIZE_ERROR) return absl::DataLossError("not a zstd frame");
  if (framed == ZSTD_CONTENTSIZE_UNKNOWN || framed != want) {
    if (framed != ZSTD_CONTENTSIZE_UNKNOWN && framed > limits.max_decoded_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("zstd frame claims ", framed, " bytes, over the limit"));
    }
    return absl::DataLossError(
        absl::StrCat("zstd frame content size does not match the ", want, " bytes expected"));
  }
  // Exactly one frame: anything after it (garbage, a second or a skippable frame) would be
  // ignored or decoded on top, so it is refused.
  const size_t frame_bytes = ZSTD_findFrameCompressedSize(in.payload.data(), in.payload.size());
  if (ZSTD_isError(frame_bytes)) {
    return absl::DataLossError(absl::StrCat("zstd: ", ZSTD_getErrorName(frame_bytes)));
  }
  if (frame_bytes != in.payload.size()) {
    return absl::DataLossError(absl::StrCat(in.payload.size() - frame_bytes,
                                            " bytes after the compressed frame"));
  }
  std::string raw(want, '\0');
  const size_t got = ZSTD_decompress(raw.data(), raw.size(), in.payload.data(), in.payload.size());
  if (ZSTD_isError(got)) {
    return absl::DataLossError(absl::StrCat("zstd: ", ZSTD_getErrorName(got)));
  }
  if (got != want) {
    return absl::DataLossError(absl::StrCat("zstd frame held ", got, " bytes, expected ", want));
  }
  out->resize(n);
  for (int64_t i = 0; i < n; ++i) {
    int32_t v = static_cast<uint8_t>(raw[i * sym]);
    if (sym == 2) v |= static_cast<int32_t>(static_cast<uint8_t>(raw[i * sym + 1])) << 8;
    (*out)[i] = v;
  }
  return CheckRange(*out, grid.dict_size);
}

double IndexEntropyBits(const std::vector<int32_t>& indices, int64_t dict_size) {
  if (indices.empty()) return 0;
  std::vector<int64_t> counts(dict_size, 0);
  for (int32_t v : indices) {
    if (v >= 0 && v < dict_size) ++counts[v];
  }
  double h = 0;
  const double n = static_cast<double>(indices.size());
  for (int64_t c : counts) {
    if (c > 0) h -= (c / n) * std::log2(c / n);
  }
  return h;
}

}  // namespace qv2x::codec
