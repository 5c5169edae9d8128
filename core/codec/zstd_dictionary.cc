#include "core/codec/zstd_dictionary.h"

#include <zdict.h>
#include <zstd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/file_util.h"
#include "core/common/fnv1a.h"
#include "core/common/status_macros.h"

namespace qv2x::codec {

ZstdDictionary::~ZstdDictionary() {
  ZSTD_freeCDict(cdict_);
  ZSTD_freeDDict(ddict_);
}

absl::StatusOr<std::shared_ptr<const ZstdDictionary>> ZstdDictionary::Train(
    const std::vector<std::string>& samples, size_t max_bytes, int level) {
  std::string joined;
  std::vector<size_t> sizes;
  for (const std::string& s : samples) {
    joined += s;
    sizes.push_back(s.size());
  }
  std::string dict(max_bytes, '\0');
  const size_t n = ZDICT_trainFromBuffer(dict.data(), dict.size(), joined.data(), sizes.data(),
                                         static_cast<unsigned>(sizes.size()));
  if (ZDICT_isError(n)) {
    return absl::FailedPreconditionError(absl::StrCat("zstd dictionary from ", samples.size(),
                                                      " samples of ", joined.size(),
                                                      " bytes: ", ZDICT_getErrorName(n)));
  }
  dict.resize(n);
  return FromBytes(std::move(dict), level);
}

absl::StatusOr<std::shared_ptr<const ZstdDictionary>> ZstdDictionary::FromBytes(std::string bytes,
                                                                                int level) {
  // Only ZDICT-format dictionaries: they carry an id that every frame names, so a frame
  // compressed against another dictionary is refused instead of decoded into garbage.
  const unsigned id = ZDICT_getDictID(bytes.data(), bytes.size());
  if (id == 0) return absl::InvalidArgumentError("not a zstd dictionary (no ZDICT header)");
  std::shared_ptr<ZstdDictionary> d(new ZstdDictionary());
  d->cdict_ = ZSTD_createCDict(bytes.data(), bytes.size(), level);
  d->ddict_ = ZSTD_createDDict(bytes.data(), bytes.size());
  if (d->cdict_ == nullptr || d->ddict_ == nullptr) {
    return absl::InvalidArgumentError("zstd could not load the dictionary");
  }
  uint64_t h = kFnv1aOffset;
  Fnv1a(h, bytes.data(), bytes.size());
  d->digest_ = absl::StrFormat("%016x", h);
  d->id_ = id;
  d->bytes_ = std::move(bytes);
  return std::shared_ptr<const ZstdDictionary>(std::move(d));
}

absl::StatusOr<std::shared_ptr<const ZstdDictionary>> ZstdDictionary::Load(const std::string& path,
                                                                           int level) {
  QV2X_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  absl::StatusOr<std::shared_ptr<const ZstdDictionary>> d = FromBytes(std::move(bytes), level);
  if (!d.ok()) return absl::Status(d.status().code(), absl::StrCat(path, ": ", d.status().message()));
  return d;
}

}  // namespace qv2x::codec
