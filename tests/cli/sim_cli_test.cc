// `qv2x sim` end to end: statistics JSON, OPV2V output, the BEV picture, and one-line
// errors for bad input.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace {

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

class SimCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* build = std::getenv("QV2X_BUILD_DIR");
    ASSERT_NE(build, nullptr) << "QV2X_BUILD_DIR is not set (ctest sets it)";
    bin_ = std::string(build) + "/bin/qv2x";
    ASSERT_EQ(access(bin_.c_str(), X_OK), 0) << bin_ << " is not built";
    std::string tmpl = ::testing::TempDir() + "qv2x_sim_cli_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  RunResult Run(const std::string& args) {
    const std::string out = dir_ + "/stdout", err = dir_ + "/stderr";
    const std::string cmd = "'" + bin_ + "' sim " + args + " >'" + out + "' 2>'" + err + "'";
    const int status = std::system(cmd.c_str());
    RunResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = Slurp(out);
    r.err = Slurp(err);
    return r;
  }

  void ExpectOneLineError(const std::string& args, const std::string& needle) {
    const RunResult r = Run(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.exit_code, -1) << args << ": killed by a signal";
    EXPECT_TRUE(r.out.empty()) << args << ": " << r.out;
    ASSERT_FALSE(r.err.empty()) << args;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
  }

  std::string bin_, dir_;
};

TEST_F(SimCliTest, StatsJsonHasTheKeysAndAddsUp) {
  const RunResult r = Run("--scene configs/scenes/tiny.yaml --frames 3 --stats");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  for (const char* key :
       {"frames", "agents", "objects_total", "objects_visible_to_ego",
        "objects_visible_only_to_others", "objects_visible_to_nobody", "objects_by_class",
        "points_per_agent_mean", "points_per_agent", "seconds_per_frame"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["frames"], 3);
  EXPECT_EQ(j["agents"], 3);
  EXPECT_EQ(j["objects_total"].get<int>(), j["objects_visible_to_ego"].get<int>() +
                                               j["objects_visible_only_to_others"].get<int>() +
                                               j["objects_visible_to_nobody"].get<int>());
  EXPECT_GT(j["objects_total"].get<int>(), 0);
  EXPECT_EQ(j["points_per_agent"].size(), 3u);
  EXPECT_GT(j["points_per_agent_mean"].get<double>(), 1000);

  // Deterministic: the same run gives the same numbers (timing aside).
  nlohmann::json again =
      nlohmann::json::parse(Run("--scene configs/scenes/tiny.yaml --frames 3 --stats").out);
  nlohmann::json first = j;
  first.erase("seconds_per_frame");
  again.erase("seconds_per_frame");
  EXPECT_EQ(first, again);

  const RunResult all = Run("--scene configs/scenes/tiny.yaml --frames 2 --scenario all --stats");
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(nlohmann::json::parse(all.out)["frames"], 4);
}

TEST_F(SimCliTest, WritesTheOpv2vLayoutAndAPicture) {
  const std::string out = dir_ + "/data", png = dir_ + "/bev/frame.png";
  const RunResult r = Run("--scene configs/scenes/tiny.yaml --frames 2 --out '" + out +
                          "' --render '" + png + "' --render-frame 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* agent : {"0", "1", "-1"}) {
    for (const char* stamp : {"000000", "000001"}) {
      const std::string stem = out + "/tiny_000/" + agent + "/" + stamp;
      EXPECT_EQ(Slurp(stem + ".pcd").rfind("# .PCD", 0), 0u) << stem;
      EXPECT_NE(Slurp(stem + ".yaml").find("lidar_pose: ["), std::string::npos) << stem;
    }
  }
  const std::string bytes = Slurp(png);
  ASSERT_GT(bytes.size(), 24u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  auto be32 = [&](size_t at) {
    return (static_cast<unsigned char>(bytes[at]) << 24) |
           (static_cast<unsigned char>(bytes[at + 1]) << 16) |
           (static_cast<unsigned char>(bytes[at + 2]) << 8) |
           static_cast<unsigned char>(bytes[at + 3]);
  };
  // IHDR: a landscape picture (the range of interest is wider than deep).
  EXPECT_GT(be32(16), be32(20));
  EXPECT_GE(be32(20), 64u);
}

TEST_F(SimCliTest, HelpDescribesTheStatistics) {
  const RunResult r = Run("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("objects_visible_only_to_others"), std::string::npos);
  EXPECT_NE(r.out.find("range of interest"), std::string::npos);
}

TEST_F(SimCliTest, BadInputIsOneLineOnStderr) {
  ExpectOneLineError("--scene configs/scenes/no_such.yaml --stats", "no_such.yaml");
  ExpectOneLineError("--stats", "--scene");
  ExpectOneLineError("--scene configs/scenes/tiny.yaml", "nothing to do");
  ExpectOneLineError("--scene configs/scenes/tiny.yaml --stats --frames 0", "--frames");
  ExpectOneLineError("--scene configs/scenes/tiny.yaml --stats --scenario 9", "--scenario");
  ExpectOneLineError("--scene configs/scenes/tiny.yaml --stats --colour red", "--colour");

  std::string text = Slurp("configs/scenes/tiny.yaml");
  const size_t at = text.find("  min_gap_m:");
  ASSERT_NE(at, std::string::npos);
  text.insert(at, "  max_gap_m: 3\n");
  const std::string bad = dir_ + "/bad.yaml";
  std::ofstream(bad) << text;
  ExpectOneLineError("--scene '" + bad + "' --stats", "traffic.max_gap_m");
}

}  // namespace
