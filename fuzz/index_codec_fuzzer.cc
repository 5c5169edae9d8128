// The index codecs (core/codec), both directions. An input is a 12-byte header naming the
// grid and what the message claims, then the payload:
//   [0] levels-1 (mod 4)  [1] height-1, [2] width-1 (mod 64)  [3..4] dict_size-2 (LE,
//   mod 65535)  [5] bit 0: zstd, bit 1: a 4 KiB limit, bit 2: sparse, bit 3: sent_cells as
//   the map implies (else bits 4-7), bit 4: the fuzzer's zstd dictionary  [6] bits_per_index
//   [7..10] decoded_bytes (LE)  [11] zstd level-1 (mod 9)
// Grids stay at most 4 x 64 x 64 so that a run makes millions of executions; the tiny
// preset's 1 x 16 x 32 fits.
// Decoding the payload must either fail or give indices that re-encode (both encodings,
// dense or with the decoded map's mask) and decode back identically; the payload read as
// indices (mod dict_size) must round-trip through both encodings, dense and sparse, with
// and without the dictionary, too. Seeds: real index maps of the tiny model's agent encoder,
// bit-packed and zstd-coded by the codec.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/codec/cell_mask.h"
#include "core/codec/index_codec.h"
#include "core/codec/zstd_dictionary.h"
#include "fuzz/fuzz_check.h"

namespace {

using qv2x::codec::IndexEncoding;
using qv2x::codec::IndexGrid;

constexpr size_t kHeader = 12;

// One dictionary for the whole run, trained on index-like byte strings.
const qv2x::codec::ZstdDictionary& Dictionary() {
  static const auto* dict = [] {
    std::vector<std::string> samples;
    for (int s = 0; s < 64; ++s) {
      std::string raw(256, '\0');
      for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>((i / (1 + s % 7)) % 11);
      samples.push_back(raw);
    }
    auto d = qv2x::codec::ZstdDictionary::Train(samples, 2048, 3);
    QV2X_FUZZ_CHECK(d.ok(), "the fuzzer's dictionary does not train");
    return new std::shared_ptr<const qv2x::codec::ZstdDictionary>(*d);
  }();
  return **dict;
}

// `indices` may hold kUnsentIndex in the cells a mask leaves out: then they are encoded
// sparse with that mask.
void RoundTrip(const std::vector<int32_t>& indices, const IndexGrid& grid, int level) {
  const int64_t plane = grid.height * grid.width;
  std::vector<uint8_t> mask(plane, 1);
  bool sparse = false;
  std::vector<int32_t> values = indices;  // unsent cells as code 0 for the encoder
  for (int64_t i = 0; i < grid.cells(); ++i) {
    if (indices[i] == qv2x::codec::kUnsentIndex) {
      mask[i % plane] = 0;
      values[i] = 0;
      sparse = true;
    }
  }
  for (IndexEncoding e : {IndexEncoding::kBitpack, IndexEncoding::kZstd}) {
    for (bool dict : {false, true}) {
      if (dict && e != IndexEncoding::kZstd) continue;
      absl::StatusOr<qv2x::codec::EncodedIndices> enc = qv2x::codec::EncodeIndices(
          values, grid, {e, level, dict ? &Dictionary() : nullptr}, sparse ? &mask : nullptr);
      QV2X_FUZZ_CHECK(enc.ok(), "valid indices do not encode");
      std::vector<int32_t> back;
      const absl::Status st = qv2x::codec::DecodeIndices(*enc, grid, {}, &back, &Dictionary());
      QV2X_FUZZ_CHECK(st.ok(), "an encoded map does not decode");
      QV2X_FUZZ_CHECK(back == indices, "the round trip changed the indices");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kHeader) return 0;
  IndexGrid grid;
  grid.levels = 1 + data[0] % 4;
  grid.height = 1 + data[1] % 64;
  grid.width = 1 + data[2] % 64;
  grid.dict_size = 2 + (data[3] | data[4] << 8) % 65535;
  qv2x::codec::EncodedView in;
  in.encoding = (data[5] & 1) ? IndexEncoding::kZstd : IndexEncoding::kBitpack;
  in.bits_per_index = data[6];
  in.decoded_bytes = uint64_t{data[7]} | uint64_t{data[8]} << 8 | uint64_t{data[9]} << 16 |
                     uint64_t{data[10]} << 24;
  const int level = 1 + data[11] % 9;
  in.payload = std::string_view(reinterpret_cast<const char*>(data) + kHeader, size - kHeader);
  in.sparse = (data[5] & 4) != 0;
  if (in.sparse) {
    const int64_t plane = grid.height * grid.width;
    const uint64_t mask_bytes = qv2x::codec::MaskBytes(plane);
    const uint64_t per_cell =
        grid.levels *
        (in.encoding == IndexEncoding::kZstd ? qv2x::codec::SymbolBytes(grid.dict_size) : 1);
    if (!(data[5] & 8)) {
      in.sent_cells = data[5] >> 4;
    } else if (in.encoding == IndexEncoding::kZstd) {  // what decoded_bytes implies
      in.sent_cells =
          in.decoded_bytes > mask_bytes ? (in.decoded_bytes - mask_bytes) / per_cell : 0;
    } else if (in.payload.size() >= mask_bytes) {  // the mask's own count
      for (uint64_t i = 0; i < mask_bytes; ++i) {
        in.sent_cells += __builtin_popcount(static_cast<uint8_t>(in.payload[i]));
      }
    }
  }
  if (data[5] & 16) in.dictionary_digest = Dictionary().digest();

  // A small limit too, so that the limit checks are reached.
  const qv2x::codec::DecodeLimits limits{(data[5] & 2) ? 4096u : 64u << 20};
  std::vector<int32_t> out;
  if (qv2x::codec::DecodeIndices(in, grid, limits, &out, &Dictionary()).ok()) {
    QV2X_FUZZ_CHECK(static_cast<int64_t>(out.size()) == grid.cells(), "decoded map size");
    RoundTrip(out, grid, level);
  }

  // Encoder direction: the payload bytes as indices.
  std::vector<int32_t> indices(grid.cells());
  for (size_t i = 0; i < indices.size(); ++i) {
    const size_t j = 2 * i;
    const int32_t raw = j + 1 < in.payload.size() ? static_cast<uint8_t>(in.payload[j]) |
                                                        static_cast<uint8_t>(in.payload[j + 1]) << 8
                                                  : static_cast<int32_t>(i);
    indices[i] = raw % static_cast<int32_t>(grid.dict_size);
  }
  RoundTrip(indices, grid, level);
  // And sparse: the cells whose first-level index is odd are left out, in every level.
  const int64_t plane = grid.height * grid.width;
  for (int64_t c = 0; c < plane; ++c) {
    if (indices[c] % 2 == 0) continue;
    for (int64_t l = 0; l < grid.levels; ++l) indices[l * plane + c] = qv2x::codec::kUnsentIndex;
  }
  RoundTrip(indices, grid, level);
  return 0;
}
