#include "core/codec/cell_mask.h"

#include "absl/strings/str_cat.h"

namespace qv2x::codec {

std::string PackMask(const std::vector<uint8_t>& mask) {
  std::string out(MaskBytes(static_cast<int64_t>(mask.size())), '\0');
  for (size_t i = 0; i < mask.size(); ++i) {
    if (mask[i]) out[i / 8] = static_cast<char>(static_cast<uint8_t>(out[i / 8]) | (1u << (i % 8)));
  }
  return out;
}

absl::Status UnpackMask(std::string_view packed, int64_t cells, std::vector<uint8_t>* mask,
                        int64_t* sent) {
  if (packed.size() != MaskBytes(cells)) {
    return absl::DataLossError(absl::StrCat("cell mask is ", packed.size(), " bytes, ", cells,
                                            " cells take ", MaskBytes(cells)));
  }
  mask->assign(cells, 0);
  int64_t n = 0;
  for (int64_t i = 0; i < cells; ++i) {
    const uint8_t bit = (static_cast<uint8_t>(packed[i / 8]) >> (i % 8)) & 1u;
    (*mask)[i] = bit;
    n += bit;
  }
  if (cells % 8 != 0 && (static_cast<uint8_t>(packed.back()) >> (cells % 8)) != 0) {
    return absl::DataLossError("nonzero padding bits after the cell mask");
  }
  *sent = n;
  return absl::OkStatus();
}

}  // namespace qv2x::codec
