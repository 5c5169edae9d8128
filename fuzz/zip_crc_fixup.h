// A libFuzzer mutator for the ZIP archives LibTorch writes (checkpoints, INT8 artifacts):
// after an ordinary mutation it re-stamps the CRC-32 of every stored record in the central
// directory, so that a mutated pickle or tensor reaches the unpickler and the readers'
// tensor checks instead of stopping at VerifyZipArchive, as a deliberately crafted file
// would. Half of the mutations are left unstamped, so the CRC refusals are fuzzed too.
#ifndef QV2X_FUZZ_ZIP_CRC_FIXUP_H_
#define QV2X_FUZZ_ZIP_CRC_FIXUP_H_

#include <cstddef>
#include <cstdint>

namespace qv2x::fuzz {

// Rewrites the CRC-32s of the archive's stored records; leaves an archive whose end
// record or central directory no longer parses (or is ZIP64) as it is.
void FixZipCrcs(uint8_t* data, size_t size);

}  // namespace qv2x::fuzz

#endif  // QV2X_FUZZ_ZIP_CRC_FIXUP_H_
