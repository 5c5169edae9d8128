#include "core/common/file_util.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

namespace qv2x {
namespace {

namespace fs = std::filesystem;

// A fresh folder per test under the system temp dir.
class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("qv2x_file_util_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, ec);
    fs::remove_all(dir_, ec);
  }
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    return out;
  }
  fs::path dir_;
};

TEST_F(FileUtilTest, WriteThenReadRoundTripsBinaryBytes) {
  const std::string bytes("a\0b\nc\xff", 6);
  const std::string path = (dir_ / "sub" / "deeper" / "f.bin").string();
  ASSERT_TRUE(WriteFileAtomic(path, bytes).ok());  // creates the parent folders
  auto read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, bytes);
}

TEST_F(FileUtilTest, OverwriteReplacesContentAndLeavesNoTempFile) {
  const std::string path = (dir_ / "f.txt").string();
  ASSERT_TRUE(WriteFileAtomic(path, "first version, longer").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "second").ok());
  EXPECT_EQ(*ReadFile(path), "second");
  EXPECT_THAT(Entries(), ::testing::ElementsAre("f.txt"));
}

TEST_F(FileUtilTest, ReadMissingFileIsNotFound) {
  auto read = ReadFile((dir_ / "absent.yaml").string());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(read.status().message()), ::testing::HasSubstr("absent.yaml"));
}

// A write that fails half way (the file-size limit stops it after 1 KiB) must leave the
// old content in place and no temporary file behind. Works as root too, unlike chmod.
TEST_F(FileUtilTest, FailedWriteKeepsOldContentAndNoTempFile) {
  const std::string path = (dir_ / "state.json").string();
  ASSERT_TRUE(WriteFileAtomic(path, "old content").ok());

  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
  struct rlimit small = saved;
  small.rlim_cur = 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  absl::Status st = WriteFileAtomic(path, std::string(1 << 20, 'x'));
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("File too large"));
  EXPECT_EQ(*ReadFile(path), "old content");
  EXPECT_THAT(Entries(), ::testing::ElementsAre("state.json"));
}

// The folder cannot take the temporary file: the existing file must survive untouched.
TEST_F(FileUtilTest, WriteIntoUnwritableFolderFailsAndKeepsOldContent) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores folder permissions";
  const std::string path = (dir_ / "kept.txt").string();
  ASSERT_TRUE(WriteFileAtomic(path, "kept").ok());
  fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_FALSE(WriteFileAtomic(path, "new").ok());
  fs::permissions(dir_, fs::perms::owner_all);
  EXPECT_EQ(*ReadFile(path), "kept");
  EXPECT_THAT(Entries(), ::testing::ElementsAre("kept.txt"));
}

// The rename cannot replace a non-empty folder: error, and the temporary file is removed.
TEST_F(FileUtilTest, FailedRenameRemovesTempFile) {
  const fs::path target = dir_ / "occupied";
  fs::create_directories(target / "child");
  EXPECT_FALSE(WriteFileAtomic(target.string(), "data").ok());
  EXPECT_TRUE(fs::is_directory(target / "child"));
  EXPECT_THAT(Entries(), ::testing::ElementsAre("occupied"));
}

// What a writer killed mid-write leaves behind goes; a live writer's file and others stay.
TEST_F(FileUtilTest, StaleTempFilesOfDeadWritersAreRemoved) {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);  // a pid that no longer runs
  for (const std::string& name :
       {"last.pth.tmp." + std::to_string(child), "best.pth.tmp." + std::to_string(::getpid()),
        std::string("epoch_001.pth"), std::string("notes.tmp.txt")}) {
    ASSERT_TRUE(WriteFileAtomic((dir_ / name).string(), "x").ok());
  }
  EXPECT_EQ(RemoveStaleTempFiles(dir_.string()), 1);
  EXPECT_THAT(Entries(),
              ::testing::UnorderedElementsAre("best.pth.tmp." + std::to_string(::getpid()),
                                              "epoch_001.pth", "notes.tmp.txt"));
  EXPECT_EQ(RemoveStaleTempFiles((dir_ / "absent").string()), 0);
}

TEST_F(FileUtilTest, MakeDirsCreatesNestedFoldersAndIsIdempotent) {
  const fs::path nested = dir_ / "a" / "b" / "c";
  ASSERT_TRUE(MakeDirs(nested.string()).ok());
  EXPECT_TRUE(fs::is_directory(nested));
  EXPECT_TRUE(MakeDirs(nested.string()).ok());
  ASSERT_TRUE(WriteFileAtomic((dir_ / "plain").string(), "x").ok());
  EXPECT_FALSE(MakeDirs((dir_ / "plain" / "sub").string()).ok());  // a file is in the way
}

}  // namespace
}  // namespace qv2x
