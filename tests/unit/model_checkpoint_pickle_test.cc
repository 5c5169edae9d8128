// What is checked before LibTorch reads a checkpoint or INT8 artifact (checkpoint_pickle.h):
// real files pass; a pickle whose lengths run past its end, a memo id beyond the opcodes
// before it, an opcode reaching below its MARK, a deflated record, a missing or unsupported
// version, a record name given twice, a pickle named in another case and a storage larger
// than its record are refused by name.
#include "core/model/checkpoint_pickle.h"

#include <torch/torch.h>

#include <string>

#include "absl/strings/ascii.h"
#include "core/common/file_util.h"
#include "core/model/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

using ::testing::HasSubstr;

std::string SmallCheckpoint() {
  torch::manual_seed(0);
  torch::nn::Linear linear(3, 2);
  absl::StatusOr<std::string> bytes = SerializeCheckpoint(*linear, CheckpointMeta{});
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return *bytes;
}

uint32_t Le32(const std::string& b, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}
uint16_t Le16(const std::string& b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8);
}
void Put(std::string& b, size_t at, uint32_t v, int n) {
  for (int i = 0; i < n; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
}

// Offsets of the central-directory entry and local header of the record named `suffix`.
struct Entry {
  size_t central = 0, local = 0, data = 0;
};
Entry Find(const std::string& b, const std::string& suffix) {
  const size_t end = b.rfind(std::string("PK\x05\x06", 4));
  size_t at = Le32(b, end + 16);
  for (int i = 0; i < Le16(b, end + 10); ++i) {
    const uint16_t n = Le16(b, at + 28);
    const std::string name = b.substr(at + 46, n);
    if (name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      const size_t local = Le32(b, at + 42);
      return {at, local, local + 30 + Le16(b, local + 26) + Le16(b, local + 28)};
    }
    at += 46 + n + Le16(b, at + 30) + Le16(b, at + 32);
  }
  ADD_FAILURE() << "no record " << suffix;
  return {};
}

TEST(CheckPickle, AcceptsWhatTheWritersWrite) {
  EXPECT_TRUE(ReadArchiveRecords(SmallCheckpoint()).ok());
  torch::nn::Linear big(64, 64);
  CheckpointMeta meta;
  meta.stage = 3;
  meta.config_yaml = "name: test\n";
  absl::StatusOr<std::string> bytes = SerializeCheckpoint(*big, meta);
  ASSERT_TRUE(bytes.ok());
  EXPECT_TRUE(ReadArchiveRecords(*bytes).ok());
  EXPECT_TRUE(ParseCheckpoint(*bytes).ok());
}

TEST(CheckPickle, RefusesLengthsLinesAndOpcodesPastTheEnd) {
  // PROTO 2, BINUNICODE "ab", STOP.
  const std::string ok(
      "\x80\x02X\x02\x00\x00\x00"
      "ab.",
      10);
  EXPECT_TRUE(CheckPickle(ok).ok());
  std::string huge = ok;
  Put(huge, 3, 0x7ffffff0, 4);
  EXPECT_THAT(std::string(CheckPickle(huge).message()),
              HasSubstr("opcode 0x58 at byte 2: declares 2147483632 bytes, 3 remain"));
  EXPECT_THAT(std::string(CheckPickle("\x80\x02"
                                      "cmodule\nname")
                              .message()),
              HasSubstr("unterminated line"));
  EXPECT_THAT(std::string(CheckPickle("\x80\x02\xff.").message()),
              HasSubstr("not a pickle opcode"));
  EXPECT_THAT(std::string(CheckPickle("\x80\x02N").message()), HasSubstr("without STOP"));
  // A frame (protocol 4) must fit; its opcodes are walked inline.
  EXPECT_TRUE(CheckPickle(std::string("\x95\x02\x00\x00\x00\x00\x00\x00\x00N.", 11)).ok());
  EXPECT_FALSE(CheckPickle(std::string("\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", 11)).ok());
  // Memo ids: LibTorch's memo table grows to the id, so 2^32 - 1 would be 64 GiB of slots.
  EXPECT_TRUE(CheckPickle(std::string("\x80\x02]q\x00]r\x01\x00\x00\x00.", 12)).ok());
  EXPECT_THAT(std::string(CheckPickle("\x80\x02]r\xff\xff\xff\xff.").message()),
              HasSubstr("opcode 0x72 at byte 3: memo id 4294967295 after 2 opcodes"));

  // The stack: LibTorch erases a reversed range when an opcode reaches below its MARK.
  EXPECT_TRUE(CheckPickle("\x80\x02}(NNu.").ok());
  EXPECT_THAT(std::string(CheckPickle("\x80\x02N(0t.").message()),
              HasSubstr("opcode 0x30 at byte 4: takes 1 values, 0 there"));
  EXPECT_THAT(std::string(CheckPickle("\x80\x02}(Nu.").message()),
              HasSubstr("1 values above the MARK do not fit"));
  EXPECT_TRUE(CheckPickle("\x80\x02(Nt.").ok());
  EXPECT_THAT(std::string(CheckPickle("\x80\x02Nt.").message()), HasSubstr("no MARK"));
}

TEST(CheckPickle, RefusesWhatLibTorchsReaderWouldTrust) {
  const std::string good = SmallCheckpoint();
  {  // The pickle's first string claims 2 GiB.
    std::string b = good;
    const Entry e = Find(b, "/data.pkl");
    const size_t x = b.find('X', e.data);
    Put(b, x + 1, 0x7ffffff0, 4);
    EXPECT_THAT(std::string(ReadArchiveRecords(b).status().message()),
                HasSubstr("declares 2147483632"));
    EXPECT_FALSE(ParseCheckpoint(b).ok());
  }
  {  // A tensor record marked deflated, claiming 3.75 GiB.
    std::string b = good;
    const Entry e = Find(b, "/data/0");
    Put(b, e.central + 10, 8, 2);
    Put(b, e.central + 24, 0xF0000000u, 4);
    EXPECT_THAT(std::string(ReadArchiveRecords(b).status().message()), HasSubstr("is compressed"));
  }
  {  // No version record, then an unsupported version.
    std::string b = good;
    const Entry e = Find(b, "/version");
    b[e.central + 46 + Le16(b, e.central + 28) - 1] = 'm';
    EXPECT_THAT(std::string(ReadArchiveRecords(b).status().message()),
                HasSubstr("no version record"));
    b = good;
    b[Find(b, "/version").data] = '0';
    EXPECT_THAT(std::string(ReadArchiveRecords(b).status().message()),
                HasSubstr("is not one LibTorch reads"));
  }
  {  // Two records of one name: which one a reader takes would be up to the reader.
    std::string b = good;
    const Entry e = Find(b, "/data/7");
    b[e.central + 46 + Le16(b, e.central + 28) - 1] = '6';
    EXPECT_THAT(std::string(ReadArchiveRecords(b).status().message()), HasSubstr("appears twice"));
  }
  {  // LibTorch finds the pickle whatever the case of its name: so does the check.
    std::string b = good;
    const Entry e = Find(b, "/data.pkl");
    const uint16_t n = Le16(b, e.central + 28);
    for (size_t i = e.central + 46; i < e.central + 46 + n; ++i) b[i] = absl::ascii_toupper(b[i]);
    Put(b, b.find('X', e.data) + 1, 0x7ffffff0, 4);
    EXPECT_THAT(std::string(ReadArchiveRecords(b).status().message()),
                HasSubstr("declares 2147483632"));
  }
}

TEST(UnpickleArchive, RefusesAStorageLargerThanItsRecord) {
  // Found by fuzz/checkpoint: a metadata tensor whose storage claims 32 bytes of a 1-byte
  // record; reading its text ran off the allocation.
  absl::StatusOr<std::string> bytes =
      ReadFile("fuzz/regressions/checkpoint/tensor-past-its-storage.pth");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<Checkpoint> ckpt = ParseCheckpoint(*bytes);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_THAT(std::string(ckpt.status().message()),
              HasSubstr("its storage claims 32 bytes, its record holds 1"));
}

}  // namespace
}  // namespace qv2x
