#include "core/codec/index_codec.h"

#include <zstd.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/codec/cell_mask.h"
#include "core/codec/zstd_dictionary.h"

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
  if (in.size() != (static_cast<uint64_t>(n) * bits + 7) / 8) {
    return absl::DataLossError("bit-packed indices of the wrong length");
  }
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

absl::Status CheckInput(const std::vector<int32_t>& indices, const IndexGrid& grid,
                        const std::vector<uint8_t>* cell_mask) {
  if (absl::Status st = CheckGrid(grid); !st.ok()) return st;
  if (static_cast<int64_t>(indices.size()) != grid.cells()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", grid.cells(), " indices, got ", indices.size()));
  }
  if (cell_mask != nullptr && static_cast<int64_t>(cell_mask->size()) != grid.height * grid.width) {
    return absl::InvalidArgumentError(absl::StrCat("cell mask of ", cell_mask->size(),
                                                   " cells for a ", grid.height, "x", grid.width,
                                                   " map"));
  }
  return CheckRange(indices, grid.dict_size);
}

// The indices of the masked cells, plane-major.
std::vector<int32_t> SentValues(const std::vector<int32_t>& indices, const IndexGrid& grid,
                                const std::vector<uint8_t>& mask) {
  const int64_t plane = grid.height * grid.width;
  std::vector<int32_t> out;
  for (int64_t l = 0; l < grid.levels; ++l) {
    for (int64_t c = 0; c < plane; ++c) {
      if (mask[c]) out.push_back(indices[l * plane + c]);
    }
  }
  return out;
}

// zstd's input: the packed mask (sparse), then SymbolBytes per sent index.
std::string Symbols(const std::vector<int32_t>& indices, const IndexGrid& grid,
                    const std::vector<uint8_t>* cell_mask) {
  std::vector<int32_t> picked;
  const std::vector<int32_t>* values = &indices;
  std::string raw;
  if (cell_mask != nullptr) {
    picked = SentValues(indices, grid, *cell_mask);
    values = &picked;
    raw = PackMask(*cell_mask);
  }
  const int sym = SymbolBytes(grid.dict_size);
  const size_t base = raw.size();
  raw.resize(base + values->size() * sym);
  for (size_t i = 0; i < values->size(); ++i) {
    raw[base + i * sym] = static_cast<char>((*values)[i] & 0xff);
    if (sym == 2) raw[base + i * sym + 1] = static_cast<char>(((*values)[i] >> 8) & 0xff);
  }
  return raw;
}

// The zstd frame in `payload` decompressed into exactly `want` bytes.
absl::StatusOr<std::string> Decompress(const EncodedView& in, uint64_t want,
                                       const DecodeLimits& limits,
                                       const ZstdDictionary* dictionary) {
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
  const unsigned frame_dict = ZSTD_getDictID_fromFrame(in.payload.data(), in.payload.size());
  if (in.dictionary_digest.empty() && frame_dict != 0) {
    return absl::DataLossError(absl::StrCat("zstd frame was compressed against dictionary id ",
                                            frame_dict, ", the map names none"));
  }
  if (dictionary != nullptr && frame_dict != 0 && frame_dict != dictionary->id()) {
    return absl::DataLossError(absl::StrCat("zstd frame names dictionary id ", frame_dict,
                                            ", dictionary ", dictionary->digest(), " has id ",
                                            dictionary->id()));
  }
  std::string raw(want, '\0');
  size_t got;
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  if (dictionary != nullptr) {
    got = ZSTD_decompress_usingDDict(dctx, raw.data(), raw.size(), in.payload.data(),
                                     in.payload.size(), dictionary->ddict());
  } else {
    got = ZSTD_decompressDCtx(dctx, raw.data(), raw.size(), in.payload.data(), in.payload.size());
  }
  ZSTD_freeDCtx(dctx);
  if (ZSTD_isError(got)) {
    return absl::DataLossError(absl::StrCat("zstd: ", ZSTD_getErrorName(got)));
  }
  if (got != want) {
    return absl::DataLossError(absl::StrCat("zstd frame held ", got, " bytes, expected ", want));
  }
  return raw;
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
                                             const IndexGrid& grid, const EncodeOptions& options,
                                             const std::vector<uint8_t>* cell_mask) {
  if (absl::Status st = CheckInput(indices, grid, cell_mask); !st.ok()) return st;
  EncodedIndices out;
  out.encoding = options.encoding;
  out.sparse = cell_mask != nullptr;
  if (out.sparse) {
    for (uint8_t f : *cell_mask) out.sent_cells += f != 0;
  }
  if (options.encoding == IndexEncoding::kBitpack) {
    if (options.dictionary != nullptr) {
      return absl::InvalidArgumentError("a zstd dictionary applies to the zstd encoding only");
    }
    out.bits_per_index = BitsPerIndex(grid.dict_size);
    if (!out.sparse) {
      out.payload = PackBits(indices, out.bits_per_index);
    } else {
      out.payload = PackMask(*cell_mask) + PackBits(SentValues(indices, grid, *cell_mask),
                                                     out.bits_per_index);
    }
    return out;
  }
  const std::string raw = Symbols(indices, grid, cell_mask);
  out.decoded_bytes = raw.size();
  out.payload.resize(ZSTD_compressBound(raw.size()));
  size_t n;
  if (options.dictionary != nullptr) {
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    n = ZSTD_compress_usingCDict(cctx, out.payload.data(), out.payload.size(), raw.data(),
                                 raw.size(), options.dictionary->cdict());
    ZSTD_freeCCtx(cctx);
    out.dictionary_digest = options.dictionary->digest();
  } else {
    n = ZSTD_compress(out.payload.data(), out.payload.size(), raw.data(), raw.size(),
                      options.zstd_level);
  }
  if (ZSTD_isError(n)) {
    return absl::InternalError(absl::StrCat("zstd: ", ZSTD_getErrorName(n)));
  }
  out.payload.resize(n);
  return out;
}

absl::StatusOr<std::string> RawSymbols(const std::vector<int32_t>& indices, const IndexGrid& grid,
                                       const std::vector<uint8_t>* cell_mask) {
  if (absl::Status st = CheckInput(indices, grid, cell_mask); !st.ok()) return st;
  return Symbols(indices, grid, cell_mask);
}

absl::Status DecodeIndices(const EncodedView& in, const IndexGrid& grid, const DecodeLimits& limits,
                           std::vector<int32_t>* out, const ZstdDictionary* dictionary) {
  if (absl::Status st = CheckGrid(grid); !st.ok()) return st;
  const int64_t plane = grid.height * grid.width;
  if (!in.sparse && in.sent_cells != 0) {
    return absl::InvalidArgumentError("sent_cells is set on a dense map");
  }
  if (in.sent_cells > static_cast<uint64_t>(plane)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sent_cells ", in.sent_cells, " exceeds the map's ", plane, " cells"));
  }
  const uint64_t mask_bytes = in.sparse ? MaskBytes(plane) : 0;
  const int64_t n = grid.levels * (in.sparse ? static_cast<int64_t>(in.sent_cells) : plane);
  std::string raw;  // zstd: the decompressed stream
  std::string_view mask_view, values_view;
  if (in.encoding == IndexEncoding::kBitpack) {
    if (!in.dictionary_digest.empty()) {
      return absl::InvalidArgumentError("a bit-packed map names a zstd dictionary");
    }
    const int bits = BitsPerIndex(grid.dict_size);
    if (in.bits_per_index != bits) {
      return absl::InvalidArgumentError(absl::StrCat("bits_per_index ", in.bits_per_index,
                                                     ", expected ", bits, " for ", grid.dict_size,
                                                     " codes"));
    }
    const uint64_t want = mask_bytes + (static_cast<uint64_t>(n) * bits + 7) / 8;
    if (want > limits.max_decoded_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "index map of ", want, " bytes exceeds the limit of ", limits.max_decoded_bytes));
    }
    if (in.payload.size() != want) {
      return absl::DataLossError(absl::StrCat("payload is ", in.payload.size(), " bytes, a ", bits,
                                              "-bit map of ", n, " indices",
                                              in.sparse ? " and its cell mask" : "", " takes ",
                                              want));
    }
    mask_view = in.payload.substr(0, mask_bytes);
    values_view = in.payload.substr(mask_bytes);
  } else {
    if (!in.dictionary_digest.empty() &&
        (dictionary == nullptr || dictionary->digest() != in.dictionary_digest)) {
      return absl::NotFoundError(absl::StrCat("zstd dictionary ", in.dictionary_digest.substr(0, 16),
                                              " is not held here"));
    }
    const int sym = SymbolBytes(grid.dict_size);
    const uint64_t want = mask_bytes + static_cast<uint64_t>(n) * sym;
    if (in.decoded_bytes != want) {
      return absl::InvalidArgumentError(absl::StrCat("decoded size ", in.decoded_bytes,
                                                     " does not match the grid's ", want, " bytes"));
    }
    if (want > limits.max_decoded_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("decoded size ", want, " exceeds the limit of ", limits.max_decoded_bytes));
    }
    absl::StatusOr<std::string> d =
        Decompress(in, want, limits, in.dictionary_digest.empty() ? nullptr : dictionary);
    if (!d.ok()) return d.status();
    raw = std::move(*d);
    mask_view = std::string_view(raw).substr(0, mask_bytes);
    values_view = std::string_view(raw).substr(mask_bytes);
  }

  std::vector<int32_t> values;
  std::vector<int32_t>* target = in.sparse ? &values : out;
  if (in.encoding == IndexEncoding::kBitpack) {
    if (absl::Status st = UnpackBits(values_view, in.bits_per_index, n, target); !st.ok()) {
      return st;
    }
  } else {
    const int sym = SymbolBytes(grid.dict_size);
    target->resize(n);
    for (int64_t i = 0; i < n; ++i) {
      int32_t v = static_cast<uint8_t>(values_view[i * sym]);
      if (sym == 2) v |= static_cast<int32_t>(static_cast<uint8_t>(values_view[i * sym + 1])) << 8;
      (*target)[i] = v;
    }
  }
  if (absl::Status st = CheckRange(*target, grid.dict_size); !st.ok()) return st;
  if (!in.sparse) return absl::OkStatus();

  std::vector<uint8_t> mask;
  int64_t sent = 0;
  if (absl::Status st = UnpackMask(mask_view, plane, &mask, &sent); !st.ok()) return st;
  if (sent != static_cast<int64_t>(in.sent_cells)) {
    return absl::DataLossError(
        absl::StrCat("cell mask sets ", sent, " cells, the map says ", in.sent_cells));
  }
  out->assign(grid.cells(), kUnsentIndex);
  size_t k = 0;
  for (int64_t l = 0; l < grid.levels; ++l) {
    int32_t* dst = out->data() + l * plane;
    for (int64_t c = 0; c < plane; ++c) {
      if (mask[c]) dst[c] = values[k++];
    }
  }
  return absl::OkStatus();
}

double IndexEntropyBits(const std::vector<int32_t>& indices, int64_t dict_size) {
  if (indices.empty()) return 0;
  std::vector<int64_t> counts(dict_size, 0);
  int64_t valid = 0;
  for (int32_t v : indices) {
    if (v >= 0 && v < dict_size) {
      ++counts[v];
      ++valid;
    }
  }
  if (valid == 0) return 0;
  double h = 0;
  const double n = static_cast<double>(valid);
  for (int64_t c : counts) {
    if (c > 0) h -= (c / n) * std::log2(c / n);
  }
  return h;
}

}  // namespace qv2x::codec
