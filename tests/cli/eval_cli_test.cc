// `qv2x eval` end to end: runs the built binary on box files written to a temp folder.
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/cli_test_util.h"

namespace {

using ::qv2x::testing::CliResult;

class EvalCliTest : public ::qv2x::testing::CliTest {
 protected:
  EvalCliTest() : CliTest("eval") {}
};

std::string Box(const std::string& cls, double x, double y, double l, double w,
                const std::string& score = "") {
  std::ostringstream s;
  s << R"({"class": ")" << cls << R"(", "x": )" << x << R"(, "y": )" << y << R"(, "z": -1, "l": )"
    << l << R"(, "w": )" << w << R"(, "h": 1.5, "yaw": 0)";
  if (!score.empty()) s << R"(, "score": )" << score;
  return s.str() + "}";
}

// Vehicles at 0 and 20, a pedestrian at (5, 5). Predictions: the first vehicle exactly
// (0.9), the second shifted by half its length (IoU 1/3, 0.8), the pedestrian exactly
// (0.7) and a truck where there is none (0.6).
//   vehicle:    0.3 -> [TP TP] = 1; 0.5, 0.7 -> [TP FP] vs 2 GT = 0.5
//   pedestrian: 1 at every threshold; truck: no GT -> 0
//   mAP: 0.3 -> 2/3; 0.5, 0.7 -> 1.5/3 = 0.5
std::string KnownGt() {
  return R"({"frames": [{"frame": "000001", "boxes": [)" + Box("vehicle", 0, 0, 4, 2) + ", " +
         Box("vehicle", 20, 0, 4, 2) + ", " + Box("pedestrian", 5, 5, 0.8, 0.6) + "]}]}";
}
std::string KnownPred() {
  return R"({"frames": [{"frame": "000001", "boxes": [)" + Box("vehicle", 0, 0, 4, 2, "0.9") +
         ", " + Box("vehicle", 22, 0, 4, 2, "0.8") + ", " +
         Box("pedestrian", 5, 5, 0.8, 0.6, "0.7") + ", " + Box("truck", -30, 0, 8, 3, "0.6") +
         "]}]}";
}

TEST_F(EvalCliTest, JsonKnownAnswer) {
  const std::string gt = Write("gt.json", KnownGt()), pred = Write("pred.json", KnownPred());
  const CliResult r = Run("--pred '" + pred + "' --gt '" + gt + "' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_EQ(r.out.rfind(R"({"ap":{"vehicle":{"0.3":)", 0), 0u) << r.out;  // documented order
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  ASSERT_EQ(j["ap"].size(), 3u);
  const double tol = 1e-12;
  for (const char* t : {"0.3", "0.5", "0.7"}) {
    for (const char* cls : {"vehicle", "pedestrian", "truck"}) {
      ASSERT_TRUE(j["ap"][cls].contains(t)) << cls << " " << t;
    }
    EXPECT_NEAR(j["ap"]["pedestrian"][t].get<double>(), 1.0, tol) << t;
    EXPECT_EQ(j["ap"]["truck"][t].get<double>(), 0.0) << t;
  }
  EXPECT_NEAR(j["ap"]["vehicle"]["0.3"].get<double>(), 1.0, tol);
  EXPECT_NEAR(j["ap"]["vehicle"]["0.5"].get<double>(), 0.5, tol);
  EXPECT_NEAR(j["ap"]["vehicle"]["0.7"].get<double>(), 0.5, tol);
  ASSERT_EQ(j["map"].size(), 3u);
  EXPECT_NEAR(j["map"]["0.3"].get<double>(), 2.0 / 3, tol);
  EXPECT_NEAR(j["map"]["0.5"].get<double>(), 0.5, tol);
  EXPECT_NEAR(j["map"]["0.7"].get<double>(), 0.5, tol);
}

TEST_F(EvalCliTest, SortOrderChangesTheAnswer) {
  // Frame a: TP 0.9, FP 0.1; frame b: TP 0.8. Global [TP TP FP] -> 1; per-frame
  // [TP FP TP] -> 5/6.
  const std::string gt = Write(
      "gt.json", R"({"frames": [{"frame": "a", "boxes": [)" + Box("vehicle", 0, 0, 4, 2) +
                     R"(]}, {"frame": "b", "boxes": [)" + Box("vehicle", 0, 0, 4, 2) + "]}]}");
  const std::string pred =
      Write("pred.json",
            R"({"frames": [{"frame": "a", "boxes": [)" + Box("vehicle", 0, 0, 4, 2, "0.9") + ", " +
                Box("vehicle", 50, 0, 4, 2, "0.1") + R"(]}, {"frame": "b", "boxes": [)" +
                Box("vehicle", 0, 0, 4, 2, "0.8") + "]}]}");
  const std::string base = "--pred '" + pred + "' --gt '" + gt + "' --json";
  const CliResult global = Run(base), by_default = Run(base + " --sort global"),
                  frame = Run(base + " --sort frame");
  ASSERT_EQ(global.exit_code, 0) << global.err;
  ASSERT_EQ(frame.exit_code, 0) << frame.err;
  EXPECT_EQ(global.out, by_default.out);
  EXPECT_NEAR(nlohmann::json::parse(global.out)["ap"]["vehicle"]["0.5"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(nlohmann::json::parse(frame.out)["ap"]["vehicle"]["0.5"].get<double>(), 5.0 / 6,
              1e-12);
}

TEST_F(EvalCliTest, TableOutput) {
  const std::string gt = Write("gt.json", KnownGt()), pred = Write("pred.json", KnownPred());
  const CliResult r = Run("--pred '" + pred + "' --gt '" + gt + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"vehicle", "pedestrian", "truck", "mAP", "AP@0.5", "0.6667", "global"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << " missing from:\n" << r.out;
  }
}

TEST_F(EvalCliTest, GroundTruthFramesWithoutPredictionsCountAsMisses) {
  const std::string gt = Write(
      "gt.json", R"({"frames": [{"frame": "a", "boxes": [)" + Box("vehicle", 0, 0, 4, 2) +
                     R"(]}, {"frame": "b", "boxes": [)" + Box("vehicle", 0, 0, 4, 2) + "]}]}");
  const std::string pred = Write("pred.json", R"({"frames": [{"frame": "a", "boxes": [)" +
                                                  Box("vehicle", 0, 0, 4, 2, "0.9") + "]}]}");
  const CliResult r = Run("--pred '" + pred + "' --gt '" + gt + "' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(nlohmann::json::parse(r.out)["ap"]["vehicle"]["0.7"].get<double>(), 0.5, 1e-12);
}

TEST_F(EvalCliTest, BadInputIsOneLineAndNonZeroExit) {
  const std::string gt = Write("gt.json", KnownGt()), pred = Write("pred.json", KnownPred());
  const std::string ok_gt = " --gt '" + gt + "'", ok_pred = " --pred '" + pred + "'";
  const auto file = [&](const std::string& name, const std::string& text) {
    return "'" + Write(name, text) + "'";
  };
  ExpectOneLineError("--pred '" + dir() + "/absent.json'" + ok_gt, "absent.json");
  ExpectOneLineError("--pred " + file("broken.json", "{\"frames\": [") + ok_gt, "malformed JSON");
  ExpectOneLineError("--pred " +
                         file("car.json", R"({"frames": [{"frame": "000001", "boxes": [)" +
                                              Box("car", 0, 0, 4, 2, "0.5") + "]}]}") +
                         ok_gt,
                     "unknown class \"car\"");
  ExpectOneLineError("--pred " +
                         file("neg.json", R"({"frames": [{"frame": "000001", "boxes": [)" +
                                              Box("vehicle", 0, 0, -4, 2, "0.5") + "]}]}") +
                         ok_gt,
                     "boxes[0].l: must be > 0");
  ExpectOneLineError("--pred " +
                         file("noscore.json", R"({"frames": [{"frame": "000001", "boxes": [)" +
                                                  Box("vehicle", 0, 0, 4, 2) + "]}]}") +
                         ok_gt,
                     "score: missing");
  ExpectOneLineError(
      "--pred " + file("extra.json", R"({"frames": [{"frame": "000099", "boxes": []}]})") + ok_gt,
      "\"000099\"");
  ExpectOneLineError(ok_pred + " --gt " + file("gtbad.json", R"({"frames": 1})"), "frames");
  ExpectOneLineError(ok_pred + ok_gt + " --sort sideways", "--sort");
  ExpectOneLineError(ok_pred, "--gt is required");
  ExpectOneLineError(ok_pred + ok_gt + " --frobnicate 3", "--frobnicate");
}

TEST_F(EvalCliTest, HelpDescribesTheFlags) {
  const CliResult r = Run("--help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* s : {"--pred", "--gt", "--sort", "--json", "global", "frame"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  }
}

}  // namespace
