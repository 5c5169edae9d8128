#include "services/confined_paths.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace qv2x::services {
namespace {
namespace fs = std::filesystem;

class ConfinedPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("qv2x_confined_" + std::to_string(::getpid()));
    fs::create_directories(root_ / "artifacts" / "run");
    fs::create_directories(root_ / "elsewhere");
    std::ofstream(root_ / "artifacts" / "run" / "a.pth") << "x";
    std::ofstream(root_ / "elsewhere" / "secret") << "y";
    fs::create_symlink(root_ / "elsewhere", root_ / "artifacts" / "out");
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string Artifacts() const { return (root_ / "artifacts").string(); }
  fs::path root_;
};

TEST_F(ConfinedPathsTest, InsideIsResolvedEscapesAreRefusedNamingTheField) {
  auto ok = ConfinePath(Artifacts(), "run/a.pth", "checkpoint");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, (root_ / "artifacts" / "run" / "a.pth").string());
  for (const std::string& bad :
       {std::string("../elsewhere/secret"), std::string("run/../../elsewhere/secret"),
        (root_ / "elsewhere" / "secret").string(), std::string("/etc/passwd"),
        std::string("out/secret")}) {  // a symlink out of the folder
    auto st = ConfinePath(Artifacts(), bad, "checkpoint");
    EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(st.status().message().find("checkpoint"), std::string::npos) << st.status();
  }
}

TEST_F(ConfinedPathsTest, HugePathsAreRefusedWithoutBeingEchoed) {
  const std::string huge(100'000, 'a');
  auto st = ConfinePath(Artifacts(), huge, "output");
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(st.status().message().size(), 120u) << st.status().message().substr(0, 200);
  auto missing = ResolveInput(Artifacts(), "", std::string(3000, 'b'), "input");
  EXPECT_FALSE(missing.ok());
  EXPECT_LT(missing.status().message().size(), 300u);
}

}  // namespace
}  // namespace qv2x::services
