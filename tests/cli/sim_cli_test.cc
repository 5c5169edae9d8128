// `qv2x sim` end to end: statistics JSON, OPV2V output, the BEV picture, and one-line
// errors for bad input.
#include <cmath>
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
  EXPECT_DOUBLE_EQ(
      j["share_visible_only_to_others"].get<double>(),
      j["objects_visible_only_to_others"].get<double>() / j["objects_total"].get<double>());
  for (const char* cls : {"vehicle", "pedestrian", "truck"}) {
    EXPECT_DOUBLE_EQ(j["objects_per_frame_by_class"][cls].get<double>(),
                     j["objects_by_class"][cls].get<double>() / 3)
        << cls;
  }
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

// --export: one frame in the ego frame. The ego sits at the origin heading along x; the
// ground truth and its visibility agree with the statistics of the same frame.
TEST_F(SimCliTest, ExportsAFrameInTheEgoFrame) {
  const std::string path = dir() + "/frame.json";
  const CliResult r =
      Run("--scene configs/scenes/tiny.yaml --render-frame 1 --export '" + path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(Slurp(path));
  EXPECT_EQ(j["frame"], 1);
  ASSERT_EQ(j["agents"].size(), 3u);
  const nlohmann::json& ego = j["agents"][0];
  EXPECT_EQ(ego["id"], j["ego_id"]);
  EXPECT_NEAR(ego["x"].get<double>(), 0, 1e-6);
  EXPECT_NEAR(ego["y"].get<double>(), 0, 1e-6);
  EXPECT_NEAR(ego["yaw"].get<double>(), 0, 1e-9);
  const size_t points = ego["points"].size();
  EXPECT_GT(points, 1000u);
  size_t ground = 0;  // heights are above the sweep's own ground level
  for (const auto& p : ego["points"]) ground += std::abs(p[2].get<double>()) < 0.3;
  EXPECT_GT(ground, points / 4);
  for (const auto& b : j["gt"]) {
    const std::string cls = b["class"];
    EXPECT_TRUE(cls == "vehicle" || cls == "pedestrian" || cls == "truck") << cls;
    bool ego_in = false;
    for (const auto& id : b["seen_by"]) ego_in |= id == j["ego_id"];
    EXPECT_EQ(b["seen_by_ego"].get<bool>(), ego_in);
    EXPECT_GT(b["l"].get<double>(), 0);
  }
  EXPECT_FALSE(j["gt"].empty());

  const CliResult thin = Run("--scene configs/scenes/tiny.yaml --render-frame 1 --export '" + path +
                             "' --point-stride 4");
  ASSERT_EQ(thin.exit_code, 0) << thin.err;
  const size_t kept = nlohmann::json::parse(Slurp(path))["agents"][0]["points"].size();
  EXPECT_EQ(kept, (points + 3) / 4);
  EXPECT_NE(
      Run("--scene configs/scenes/tiny.yaml --export '" + path + "' --point-stride 0").exit_code,
      0);
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
