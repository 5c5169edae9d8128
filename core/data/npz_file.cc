#include "core/data/npz_file.h"

#include <zip.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"

namespace qv2x {
namespace {

constexpr char kNpySuffix[] = ".npy";
// Entries carry a fixed time, so that the same arrays give the same bytes (as torch's
// writer does). ZIP stores local time: noon UTC on 1980-01-01, the format's first day, is
// a valid date in every time zone.
constexpr time_t kEntryTime = 315532800 + 12 * 3600;

struct ZipCloser {
  void operator()(zip_t* za) const { zip_discard(za); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipCloser>;
using ZipFilePtr = std::unique_ptr<zip_file_t, ZipFileCloser>;

std::string ErrorText(zip_error_t* error) {
  std::string text = zip_error_strerror(error);
  zip_error_fini(error);
  return text;
}

// All of an entry's `size` bytes, then a read past them: libzip checks the CRC-32 (and the
// size) only when the entry's end is read. The buffer grows as bytes arrive, not to the
// size the archive claims.
absl::StatusOr<std::string> ReadEntry(zip_t* za, zip_uint64_t index, zip_uint64_t size,
                                      const std::string& origin) {
  ZipFilePtr f(zip_fopen_index(za, index, 0));
  if (f == nullptr) {
    return absl::DataLossError(absl::StrCat(origin, ": cannot open the entry: ", zip_strerror(za)));
  }
  constexpr zip_uint64_t kChunk = zip_uint64_t{1} << 20;
  std::string data;
  zip_uint64_t got = 0;
  char extra;
  while (true) {
    const bool past_end = got == size;
    if (!past_end && data.size() == got) data.resize(got + std::min(size - got, kChunk));
    const zip_int64_t n = past_end ? zip_fread(f.get(), &extra, 1)
                                   : zip_fread(f.get(), data.data() + got, data.size() - got);
    if (n < 0) {
      return absl::DataLossError(
          absl::StrCat(origin, ": damaged (", zip_file_strerror(f.get()), ")"));
    }
    if (n == 0) break;
    if (past_end) {
      return absl::DataLossError(
          absl::StrCat(origin, ": holds more than the ", size, " bytes its header claims"));
    }
    got += static_cast<zip_uint64_t>(n);
  }
  if (got != size) {
    return absl::DataLossError(
        absl::StrCat(origin, ": ends after ", got, " of the ", size, " bytes its header claims"));
  }
  return data;
}

// What numpy writes (stored or deflated, not encrypted), and a claimed size the entry's
// bytes can hold, so that a few bytes cannot make the reader allocate gigabytes.
absl::Status CheckStorage(const zip_stat_t& st, uint64_t archive_size, const std::string& where) {
  if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": encrypted entries are not read"));
  }
  if (!(st.valid & ZIP_STAT_COMP_METHOD) || !(st.valid & ZIP_STAT_COMP_SIZE) ||
      (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": compression method ", st.comp_method,
                     " is not read (np.savez stores entries, np.savez_compressed deflates them)"));
  }
  if (st.comp_size > archive_size) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": claims ", st.comp_size,
                                                   " stored bytes, the file has ", archive_size));
  }
  // Deflate expands at most 1032-fold (a 258-byte match per 2 bits, roughly).
  const uint64_t most = st.comp_method == ZIP_CM_STORE ? st.comp_size : st.comp_size * 1032 + 1024;
  if (st.size > most) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": claims ", st.size, " bytes from ",
                                                   st.comp_size, " stored, more than they hold"));
  }
  return absl::OkStatus();
}

}  // namespace

bool LooksLikeNpz(const std::string& bytes) {
  // Local file header: signature, ..., name length at 26 (uint16), the name at 30.
  if (bytes.size() < 30 || bytes.compare(0, 4, "PK\x03\x04") != 0) return false;
  const size_t name_len =
      static_cast<uint8_t>(bytes[26]) | (size_t{static_cast<uint8_t>(bytes[27])} << 8);
  if (bytes.size() < 30 + name_len) return false;
  return absl::EndsWith(absl::string_view(bytes.data() + 30, name_len), kNpySuffix);
}

absl::StatusOr<NpzArrays> ParseNpz(const std::string& bytes, const std::string& origin) {
  // libzip opens zero bytes as a new, empty archive; the smallest real one has its 22-byte
  // end-of-central-directory record.
  if (bytes.size() < 22) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": not a complete .npz (ZIP) archive: ", bytes.size(), " bytes"));
  }
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (src == nullptr) {
    return absl::InternalError(absl::StrCat(origin, ": ", ErrorText(&error)));
  }
  ZipPtr za(zip_open_from_source(src, ZIP_RDONLY, &error));
  if (za == nullptr) {
    zip_source_free(src);
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": not a complete .npz (ZIP) archive: ", ErrorText(&error)));
  }
  zip_error_fini(&error);
  const zip_int64_t count = zip_get_num_entries(za.get(), 0);
  // Every entry's claimed size first: a small file may claim terabytes.
  std::vector<zip_stat_t> stats(static_cast<size_t>(count));
  uint64_t total = 0;
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t& st = stats[i];
    if (zip_stat_index(za.get(), i, 0, &st) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": entry ", i, ": ", zip_strerror(za.get())));
    }
    const std::string name = (st.valid & ZIP_STAT_NAME) ? st.name : "";
    const std::string where = absl::StrCat(origin, ": entry ", name);
    if (!absl::EndsWith(name, kNpySuffix)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": not a .npy array (an .npz holds only KEY.npy entries)"));
    }
    if (!(st.valid & ZIP_STAT_SIZE)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": no uncompressed size"));
    }
    if (st.size > kMaxNpzBytes - total) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": the entries claim over ", kMaxNpzBytes >> 30,
                       " GiB uncompressed in all (this one ", st.size, " bytes)"));
    }
    total += st.size;
  }
  NpzArrays out;
  for (zip_int64_t i = 0; i < count; ++i) {
    const std::string name = stats[i].name;
    const std::string where = absl::StrCat(origin, ": entry ", name);
    const std::string key = name.substr(0, name.size() - (sizeof(kNpySuffix) - 1));
    if (out.count(key)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": the key ", key, " appears twice"));
    }
    QV2X_RETURN_IF_ERROR(CheckStorage(stats[i], bytes.size(), where));
    QV2X_ASSIGN_OR_RETURN(std::string npy, ReadEntry(za.get(), i, stats[i].size, where));
    QV2X_ASSIGN_OR_RETURN(out[key], ParseNpy(npy, where));
  }
  return out;
}

absl::StatusOr<NpzArrays> ReadNpz(const std::string& path) {
  QV2X_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseNpz(bytes, path);
}

absl::StatusOr<std::string> EncodeNpz(const NpzArrays& arrays) {
  // libzip writes nothing for an archive without entries; np.savez() writes this.
  if (arrays.empty()) return std::string("PK\x05\x06", 4) + std::string(18, '\0');
  std::vector<std::string> npy;  // alive until zip_close reads them
  npy.reserve(arrays.size());
  for (const auto& [key, array] : arrays) {
    if (key.empty()) return absl::InvalidArgumentError("npz: an empty key");
    absl::StatusOr<std::string> b = EncodeNpy(array);
    if (!b.ok())
      return absl::InvalidArgumentError(absl::StrCat("npz: key ", key, ": ", b.status().message()));
    npy.push_back(*std::move(b));
  }
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  if (buffer == nullptr) return absl::InternalError(absl::StrCat("npz: ", ErrorText(&error)));
  zip_source_keep(buffer);  // zip_close writes into it; we read it afterwards
  const std::unique_ptr<zip_source_t, void (*)(zip_source_t*)> keep(buffer, zip_source_free);
  ZipPtr za(zip_open_from_source(buffer, ZIP_TRUNCATE, &error));
  if (za == nullptr) {
    zip_source_free(buffer);  // the reference zip_open_from_source did not take
    return absl::InternalError(absl::StrCat("npz: ", ErrorText(&error)));
  }
  zip_error_fini(&error);
  size_t i = 0;
  for (const auto& entry : arrays) {
    const std::string& bytes = npy[i++];
    zip_source_t* s = zip_source_buffer(za.get(), bytes.data(), bytes.size(), 0);
    const zip_int64_t index =
        s == nullptr
            ? -1
            : zip_file_add(za.get(), (entry.first + kNpySuffix).c_str(), s, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      if (s != nullptr) zip_source_free(s);
      return absl::InternalError(
          absl::StrCat("npz: key ", entry.first, ": ", zip_strerror(za.get())));
    }
    if (zip_set_file_compression(za.get(), index, ZIP_CM_STORE, 0) != 0 ||
        zip_file_set_mtime(za.get(), index, kEntryTime, 0) != 0) {
      return absl::InternalError(
          absl::StrCat("npz: key ", entry.first, ": ", zip_strerror(za.get())));
    }
  }
  if (zip_close(za.get()) != 0) {
    return absl::InternalError(absl::StrCat("npz: ", zip_strerror(za.get())));
  }
  (void)za.release();  // zip_close freed it
  zip_stat_t st;
  if (zip_source_stat(buffer, &st) != 0 || zip_source_open(buffer) != 0) {
    return absl::InternalError(absl::StrCat("npz: ", zip_error_strerror(zip_source_error(buffer))));
  }
  std::string out(st.size, '\0');
  zip_uint64_t got = 0;
  zip_int64_t n = 1;
  while (got < out.size() && n > 0) {
    n = zip_source_read(buffer, out.data() + got, out.size() - got);
    if (n > 0) got += static_cast<zip_uint64_t>(n);
  }
  zip_source_close(buffer);
  if (got != out.size()) {
    return absl::InternalError("npz: reading the archive back from memory failed");
  }
  return out;
}

absl::Status WriteNpz(const std::string& path, const NpzArrays& arrays) {
  absl::StatusOr<std::string> bytes = EncodeNpz(arrays);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(), absl::StrCat(path, ": ", bytes.status().message()));
  }
  return WriteFileAtomic(path, *bytes);
}

}  // namespace qv2x
