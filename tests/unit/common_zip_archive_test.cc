#include "core/common/zip_archive.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace qv2x {
namespace {

void PutLe(std::string* s, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// A stored (uncompressed) ZIP archive as LibTorch writes them.
std::string StoredZip(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string out, dir;
  for (const auto& [name, data] : records) {
    const uint64_t local = out.size();
    const uint32_t crc = Crc32(data);
    PutLe(&out, 0x04034b50, 4);
    PutLe(&out, 20, 2);  // version needed
    PutLe(&out, 0, 2);   // flags
    PutLe(&out, 0, 2);   // stored
    PutLe(&out, 0, 4);   // time, date
    PutLe(&out, crc, 4);
    PutLe(&out, data.size(), 4);
    PutLe(&out, data.size(), 4);
    PutLe(&out, name.size(), 2);
    PutLe(&out, 0, 2);
    out += name + data;
    PutLe(&dir, 0x02014b50, 4);
    PutLe(&dir, 20, 2);
    PutLe(&dir, 20, 2);
    PutLe(&dir, 0, 2);
    PutLe(&dir, 0, 2);
    PutLe(&dir, 0, 4);
    PutLe(&dir, crc, 4);
    PutLe(&dir, data.size(), 4);
    PutLe(&dir, data.size(), 4);
    PutLe(&dir, name.size(), 2);
    PutLe(&dir, 0, 2);  // extra
    PutLe(&dir, 0, 2);  // comment
    PutLe(&dir, 0, 2);  // disk
    PutLe(&dir, 0, 2);  // internal attributes
    PutLe(&dir, 0, 4);  // external attributes
    PutLe(&dir, local, 4);
    dir += name;
  }
  const uint64_t dir_offset = out.size();
  out += dir;
  PutLe(&out, 0x06054b50, 4);
  PutLe(&out, 0, 4);
  PutLe(&out, records.size(), 2);
  PutLe(&out, records.size(), 2);
  PutLe(&out, dir.size(), 4);
  PutLe(&out, dir_offset, 4);
  PutLe(&out, 0, 2);
  return out;
}

const std::vector<std::pair<std::string, std::string>> kRecords = {
    {"archive/data.pkl", "pickled dict"}, {"archive/data/0", std::string(64, '\x3f')}};

TEST(ZipArchiveTest, Crc32MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(Crc32(""), 0u);
}

TEST(ZipArchiveTest, IntactArchivePasses) {
  EXPECT_TRUE(VerifyZipArchive(StoredZip(kRecords)).ok());
  EXPECT_TRUE(VerifyZipArchive(StoredZip({})).ok());
}

// A file cut anywhere is refused as incomplete, never accepted and never read past its end.
TEST(ZipArchiveTest, EveryTruncationIsRefused) {
  const std::string zip = StoredZip(kRecords);
  for (size_t n = 0; n < zip.size(); ++n) {
    const absl::Status st = VerifyZipArchive(std::string_view(zip).substr(0, n));
    ASSERT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << n << " bytes: " << st;
  }
}

TEST(ZipArchiveTest, AFlippedByteNamesItsRecord) {
  std::string zip = StoredZip(kRecords);
  const size_t at = zip.find(std::string(64, '\x3f')) + 10;
  zip[at] ^= 0x01;
  ZipDamage damage;
  const absl::Status st = VerifyZipArchive(zip, &damage);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_NE(st.message().find("archive/data/0"), std::string_view::npos) << st;
  EXPECT_EQ(damage.record, "archive/data/0");
  EXPECT_EQ(damage.data.size(), 64u);
  EXPECT_EQ(damage.data[10], '\x3e');
}

TEST(ZipArchiveTest, OtherFilesAreNoArchive) {
  EXPECT_EQ(VerifyZipArchive("name: tiny_stage3\nstage: 3\n").code(),
            absl::StatusCode::kInvalidArgument);
  std::string zip = StoredZip(kRecords);
  zip[0] = 'X';  // the first local header is gone
  EXPECT_EQ(VerifyZipArchive(zip).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qv2x
