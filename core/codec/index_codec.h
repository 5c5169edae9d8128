// Wire codecs for codebook index maps (SPEC §4, §10). An agent sends its [levels, h, w]
// index map either bit-packed at ceil(log2(dict_size)) bits per index, or as one byte
// (two above 256 codes) per index compressed with zstd, optionally against a trained
// dictionary (zstd_dictionary.h). A sparse map sends only the cells of a cell mask
// (cell_mask.h): the packed mask first, then the sent cells' indices, plane-major; the
// receiver fills the others with kUnsentIndex. Decoding is defensive: every length and
// size is checked against the expected grid before any buffer is touched, so a malformed
// or hostile payload costs a rejection, never memory.
#ifndef QV2X_CORE_CODEC_INDEX_CODEC_H_
#define QV2X_CORE_CODEC_INDEX_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace qv2x::codec {

class ZstdDictionary;

// What the receiver puts in the cells a sparse map left out (decoded as "nothing here").
inline constexpr int32_t kUnsentIndex = -1;

enum class IndexEncoding { kBitpack, kZstd };

const char* EncodingName(IndexEncoding e);  // "bitpack" | "zstd"
absl::StatusOr<IndexEncoding> ParseEncoding(std::string_view name);

// Shape of one agent's index map.
struct IndexGrid {
  int64_t levels = 0;  // L·m index planes
  int64_t height = 0;
  int64_t width = 0;
  int64_t dict_size = 0;  // codes per plane; every index is < dict_size

  int64_t cells() const { return levels * height * width; }
  bool operator==(const IndexGrid& o) const {
    return levels == o.levels && height == o.height && width == o.width && dict_size == o.dict_size;
  }
};

// Bits per index for fixed-width packing: ceil(log2(dict_size)), at least 1.
int BitsPerIndex(int64_t dict_size);
// Bytes per index before zstd: 1 up to 256 codes, else 2.
int SymbolBytes(int64_t dict_size);

struct EncodeOptions {
  IndexEncoding encoding = IndexEncoding::kBitpack;
  int zstd_level = 3;
  // zstd only; null: none. Its digest travels with the map.
  const ZstdDictionary* dictionary = nullptr;
};

// Fields every form shares. decoded_bytes, zstd only: bytes after decompression, the
// packed mask (sparse) plus the sent indices at SymbolBytes each.
struct EncodedHeader {
  IndexEncoding encoding = IndexEncoding::kBitpack;
  int bits_per_index = 0;  // bitpack: the width used
  uint64_t decoded_bytes = 0;
  bool sparse = false;
  uint64_t sent_cells = 0;        // sparse: cells of the [h, w] map sent
  std::string dictionary_digest;  // zstd: the dictionary compressed against; empty: none
};

// A received index map as it stands in the message (the payload is not copied).
struct EncodedView : EncodedHeader {
  std::string_view payload;
};

struct EncodedIndices : EncodedHeader {
  std::string payload;

  EncodedView view() const {
    EncodedView v;
    static_cast<EncodedHeader&>(v) = *this;
    v.payload = payload;
    return v;
  }
};

// `indices` holds grid.cells() values in [0, dict_size) in plane-major, row-major order.
// `cell_mask` (height · width flags, nonzero = send) makes the map sparse; null: dense.
absl::StatusOr<EncodedIndices> EncodeIndices(const std::vector<int32_t>& indices,
                                             const IndexGrid& grid, const EncodeOptions& options,
                                             const std::vector<uint8_t>* cell_mask = nullptr);

// What zstd compresses for this map (the packed mask, then one or two bytes per sent
// index): the samples a dictionary is trained on.
absl::StatusOr<std::string> RawSymbols(const std::vector<int32_t>& indices, const IndexGrid& grid,
                                       const std::vector<uint8_t>* cell_mask = nullptr);

// Limits the receiver enforces before decoding.
struct DecodeLimits {
  uint64_t max_decoded_bytes = 64 << 20;
};

// Decodes into `out` (resized to grid.cells(); kUnsentIndex in the cells a sparse map left
// out). `dictionary`: the one in.dictionary_digest names, looked up by the caller (null when
// it holds none). Errors, by what went wrong:
//   InvalidArgument    the declared width / decoded size / sent cells disagree with the grid
//   NotFound           the map names a dictionary the caller does not hold
//   DataLoss           payload length wrong, truncated or corrupt zstd frame, nonzero
//                      padding, a mask whose cells disagree with sent_cells
//   ResourceExhausted  the declared or framed decompressed size exceeds the limit
//   OutOfRange         an index >= dict_size
absl::Status DecodeIndices(const EncodedView& in, const IndexGrid& grid, const DecodeLimits& limits,
                           std::vector<int32_t>* out, const ZstdDictionary* dictionary = nullptr);
inline absl::Status DecodeIndices(const EncodedIndices& in, const IndexGrid& grid,
                                  const DecodeLimits& limits, std::vector<int32_t>* out,
                                  const ZstdDictionary* dictionary = nullptr) {
  return DecodeIndices(in.view(), grid, limits, out, dictionary);
}

// Empirical order-0 entropy of the index map in bits per index (kUnsentIndex cells not
// counted): the lossless limit for a coder that treats indices as independent symbols.
double IndexEntropyBits(const std::vector<int32_t>& indices, int64_t dict_size);

}  // namespace qv2x::codec

#endif  // QV2X_CORE_CODEC_INDEX_CODEC_H_
