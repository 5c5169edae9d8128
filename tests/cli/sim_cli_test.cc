// `qv2x sim` end to end: statistics JSON, OPV2V output, the BEV picture, and one-line
// errors for bad input.
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/cli_test_util.h"

namespace {

using ::qv2x::testing::CliResult;

class SimCliTest : public ::qv2x::testing::CliTest {
 protected:
  SimCliTest() : CliTest("sim") {}
};

TEST_F(SimCliTest, StatsJsonHasTheKeysAndAddsUp) {
  const CliResult r = Run("--scene configs/scenes/tiny.yaml --frames 3 --stats");
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

  const CliResult all = Run("--scene configs/scenes/tiny.yaml --frames 2 --scenario all --stats");
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(nlohmann::json::parse(all.out)["frames"], 4);
}

TEST_F(SimCliTest, WritesTheOpv2vLayoutAndAPicture) {
  const std::string out = dir() + "/data", png = dir() + "/bev/frame.png";
  const CliResult r = Run("--scene configs/scenes/tiny.yaml --frames 2 --out '" + out +
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
  const CliResult r = Run("--help");
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
  const std::string bad = Write("bad.yaml", text);
  ExpectOneLineError("--scene '" + bad + "' --stats", "traffic.max_gap_m");
}

}  // namespace
