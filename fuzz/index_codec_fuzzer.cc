// The index codecs (core/codec), both directions. An input is a 12-byte header naming the
// grid and what the message claims, then the payload:
//   [0] levels-1 (mod 4)  [1] height-1, [2] width-1 (mod 64)  [3..4] dict_size-2 (LE,
//   mod 65535)  [5] bit 0: zstd, bit 1: a 4 KiB limit  [6] bits_per_index
//   [7..10] decoded_bytes (LE)  [11] zstd level-1 (mod 9)
// Grids stay at most 4 x 64 x 64 so that a run makes millions of executions; the tiny
// preset's 1 x 16 x 32 fits.
// Decoding the payload must either fail or give indices that re-encode (both encodings)
// and decode back identically; the payload read as indices (mod dict_size) must round-trip
// through both encodings too. Seeds: real index maps of the tiny model's agent encoder,
// bit-packed and zstd-coded by the codec.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/codec/index_codec.h"
#include "fuzz/fuzz_check.h"

namespace {

using qv2x::codec::IndexEncoding;
using qv2x::codec::IndexGrid;

constexpr size_t kHeader = 12;

void RoundTrip(const std::vector<int32_t>& indices, const IndexGrid& grid, int level) {
  for (IndexEncoding e : {IndexEncoding::kBitpack, IndexEncoding::kZstd}) {
    absl::StatusOr<qv2x::codec::EncodedIndices> enc =
        qv2x::codec::EncodeIndices(indices, grid, {e, level});
    QV2X_FUZZ_CHECK(enc.ok(), "valid indices do not encode");
    std::vector<int32_t> back;
    const absl::Status st = qv2x::codec::DecodeIndices(*enc, grid, {}, &back);
    QV2X_FUZZ_CHECK(st.ok(), "an encoded map does not decode");
    QV2X_FUZZ_CHECK(back == indices, "the round trip changed the indices");
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

  // A small limit too, so that the limit checks are reached.
  const qv2x::codec::DecodeLimits limits{(data[5] & 2) ? 4096u : 64u << 20};
  std::vector<int32_t> out;
  if (qv2x::codec::DecodeIndices(in, grid, limits, &out).ok()) {
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
  return 0;
}
