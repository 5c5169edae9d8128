// `qv2x eval` end to end: runs the built binary on box files written to a temp folder.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace {

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

class EvalCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* build = std::getenv("QV2X_BUILD_DIR");
    ASSERT_NE(build, nullptr) << "QV2X_BUILD_DIR is not set (ctest sets it)";
    bin_ = std::string(build) + "/bin/qv2x";
    ASSERT_EQ(access(bin_.c_str(), X_OK), 0) << bin_ << " is not built";
    std::string tmpl = ::testing::TempDir() + "qv2x_eval_cli_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  static std::string Slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  RunResult Run(const std::string& args) {
    const std::string out = dir_ + "/stdout", err = dir_ + "/stderr";
    const std::string cmd = "'" + bin_ + "' eval " + args + " >'" + out + "' 2>'" + err + "'";
    const int status = std::system(cmd.c_str());
    RunResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = Slurp(out);
    r.err = Slurp(err);
    return r;
  }

  // A failing run: non-zero exit, nothing on stdout, exactly one line on stderr that
  // contains `needle`.
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
  const RunResult r = Run("--pred '" + pred + "' --gt '" + gt + "' --json");
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
  const RunResult global = Run(base), by_default = Run(base + " --sort global"),
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
  const RunResult r = Run("--pred '" + pred + "' --gt '" + gt + "'");
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
  const RunResult r = Run("--pred '" + pred + "' --gt '" + gt + "' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(nlohmann::json::parse(r.out)["ap"]["vehicle"]["0.7"].get<double>(), 0.5, 1e-12);
}

TEST_F(EvalCliTest, BadInputIsOneLineAndNonZeroExit) {
  const std::string gt = Write("gt.json", KnownGt()), pred = Write("pred.json", KnownPred());
  const std::string ok_gt = " --gt '" + gt + "'", ok_pred = " --pred '" + pred + "'";
  const auto file = [&](const std::string& name, const std::string& text) {
    return "'" + Write(name, text) + "'";
  };
  ExpectOneLineError("--pred '" + dir_ + "/absent.json'" + ok_gt, "absent.json");
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
  const RunResult r = Run("--help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* s : {"--pred", "--gt", "--sort", "--json", "global", "frame"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  }
}

}  // namespace
