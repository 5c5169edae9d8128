// A zstd dictionary for index maps (issue 13): trained with zstd's own builder (ZDICT) on
// the raw symbol streams of real index maps, shipped next to the codebook it was trained
// for and named by the FNV-1a digest of its bytes. Small maps (a sparse message, a coarse
// preset) compress far better against it than alone: the frame need not teach zstd the
// codebook's statistics each time.
#ifndef QV2X_CORE_CODEC_ZSTD_DICTIONARY_H_
#define QV2X_CORE_CODEC_ZSTD_DICTIONARY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

struct ZSTD_CDict_s;
struct ZSTD_DDict_s;

namespace qv2x::codec {

class ZstdDictionary {
 public:
  // Trains a dictionary of at most `max_bytes` from `samples` (each one message's raw symbol
  // stream, codec::RawSymbols). FailedPrecondition when zstd finds too little to learn.
  static absl::StatusOr<std::shared_ptr<const ZstdDictionary>> Train(
      const std::vector<std::string>& samples, size_t max_bytes, int level);
  // A dictionary's file bytes (ZDICT format, as Train writes them).
  static absl::StatusOr<std::shared_ptr<const ZstdDictionary>> FromBytes(std::string bytes,
                                                                         int level);
  static absl::StatusOr<std::shared_ptr<const ZstdDictionary>> Load(const std::string& path,
                                                                    int level);
  ~ZstdDictionary();

  const std::string& bytes() const { return bytes_; }
  const std::string& digest() const { return digest_; }  // 16 hex digits
  unsigned id() const { return id_; }                    // zstd's own dictionary id
  ZSTD_CDict_s* cdict() const { return cdict_; }
  ZSTD_DDict_s* ddict() const { return ddict_; }

 private:
  ZstdDictionary() = default;
  std::string bytes_, digest_;
  unsigned id_ = 0;
  ZSTD_CDict_s* cdict_ = nullptr;
  ZSTD_DDict_s* ddict_ = nullptr;
};

}  // namespace qv2x::codec

#endif  // QV2X_CORE_CODEC_ZSTD_DICTIONARY_H_
