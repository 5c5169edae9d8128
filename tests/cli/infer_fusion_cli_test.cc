// `qv2x infer --fusion all` end to end: the shipped CPU-preset models on two frames of the
// tiny scene produce the fusion-baselines table (Markdown and JSON) with one row per
// method, AP that `qv2x eval` reproduces from the written box files, and bytes ordered as
// physics says: boxes < codebook indices < points < FP32 features. Label: integration.
#include <set>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/cli_test_util.h"

namespace {

constexpr char kModels[] =
    "--config configs/cpu/stage3.yaml --checkpoint models/cpu-stage3.pth "
    "--scene configs/scenes/tiny.yaml --frames 2";

class InferFusionCli : public ::qv2x::testing::CliTest {
 protected:
  static nlohmann::json Row(const nlohmann::json& table, const std::string& method,
                            const std::string& weights_prefix) {
    for (const auto& r : table["rows"]) {
      if (r["method"] == method && r["weights"].get<std::string>().rfind(weights_prefix, 0) == 0) {
        return r;
      }
    }
    ADD_FAILURE() << "no row " << method << " / " << weights_prefix;
    return nlohmann::json::object();
  }
};

TEST_F(InferFusionCli, AllMethodsMakeOneTable) {
  const std::string out = dir() + "/all";
  auto r = Run(std::string("infer ") + kModels +
               " --fusion all --stage1-config configs/cpu/stage1.yaml"
               " --stage1-checkpoint models/cpu-stage1.pth --out " +
               out);
  ASSERT_EQ(r.exit_code, 0) << r.Combined();
  const auto table = nlohmann::json::parse(Slurp(out + "/fusion-table.json"));
  EXPECT_EQ(table["frames"], 2);
  EXPECT_EQ(table["agents_per_frame"], 3.0);
  ASSERT_EQ(table["rows"].size(), 6u);

  // Markdown: a header, a separator and one line per row, 15 columns each.
  const std::string md = Slurp(out + "/fusion-table.md");
  EXPECT_EQ(md, r.out.substr(0, md.size()));
  size_t lines = 0, pos = 0;
  while (pos < md.size() && md[pos] == '|') {
    const size_t end = md.find('\n', pos);
    const std::string line = md.substr(pos, end - pos);
    EXPECT_EQ(std::count(line.begin(), line.end(), '|'), 16) << line;
    ++lines;
    pos = end + 1;
  }
  EXPECT_EQ(lines, 2u + 6u);

  std::set<int64_t> vehicles_gt;
  for (const auto& row : table["rows"]) {
    for (const char* cls : {"vehicle", "pedestrian", "truck"}) {
      for (const char* t : {"0.3", "0.5", "0.7"}) {
        const double ap = row["ap"][cls][t];
        EXPECT_GE(ap, 0.0);
        EXPECT_LE(ap, 1.0);
      }
    }
    vehicles_gt.insert(row["num_gt"]["vehicle"].get<int64_t>());
  }
  EXPECT_EQ(vehicles_gt.size(), 1u) << "every row is scored on the same ground truth";
  EXPECT_GT(*vehicles_gt.begin(), 0);

  const auto none = Row(table, "no fusion (ego only)", "stage 3");
  const auto late = Row(table, "late fusion", "stage 3");
  const auto early = Row(table, "early fusion", "stage 3");
  const auto indices = Row(table, "intermediate (codebook)", "stage 3");
  const auto bypass = Row(table, "intermediate (codebook bypassed)", "stage 3");
  const auto stage1 = Row(table, "intermediate (FP32 features)", "stage 1");
  EXPECT_EQ(none["bytes"]["raw"]["messages"], 0);
  // Two frames, two agents besides the ego in each.
  for (const auto* row : {&late, &early, &indices, &bypass, &stage1}) {
    EXPECT_EQ((*row)["bytes"]["raw"]["messages"], 4) << (*row)["method"];
  }
  // The CPU preset's FP32 map: 64 x 64 x 128 floats after the 63-byte header and shape.
  EXPECT_EQ(table["fp32_feature_bytes"], 63 + 6 + 64 * 64 * 128 * 4);
  EXPECT_EQ(bypass["bytes"]["raw"]["mean"], table["fp32_feature_bytes"]);
  EXPECT_EQ(stage1["bytes"]["raw"]["mean"], table["fp32_feature_bytes"]);
  for (const char* c : {"raw", "zstd"}) {
    const double boxes = late["bytes"][c]["mean"], idx = indices["bytes"][c]["mean"],
                 points = early["bytes"][c]["mean"], feats = bypass["bytes"][c]["mean"];
    EXPECT_LT(boxes, idx) << c;
    EXPECT_LT(idx, points) << c;
    EXPECT_LT(points, feats) << c;
  }
  EXPECT_GT(indices["bytes"]["zstd"]["ratio_vs_fp32_features"].get<double>(), 100);

  // Every row's box file, scored by `qv2x eval`, gives the table's AP.
  for (const auto& [dir_name, row] :
       std::vector<std::pair<std::string, nlohmann::json>>{{"none", none},
                                                           {"late", late},
                                                           {"early", early},
                                                           {"intermediate", indices},
                                                           {"intermediate_no_codebook", bypass},
                                                           {"intermediate_stage1", stage1}}) {
    auto e =
        Run("eval --pred " + out + "/" + dir_name + "/pred.json --gt " + out + "/gt.json --json");
    ASSERT_EQ(e.exit_code, 0) << e.Combined();
    const auto report = nlohmann::json::parse(e.out);
    for (const char* cls : {"vehicle", "pedestrian", "truck"}) {
      for (const char* t : {"0.3", "0.5", "0.7"}) {
        EXPECT_NEAR(report["ap"][cls][t].get<double>(), row["ap"][cls][t].get<double>(), 1e-9)
            << dir_name << " " << cls << " " << t;
      }
    }
  }

  // One method alone writes the same predictions as its row of the table.
  auto one = Run(std::string("infer ") + kModels + " --fusion late --out " + dir() + "/late");
  ASSERT_EQ(one.exit_code, 0) << one.Combined();
  EXPECT_NE(one.out.find("each agent sends boxes"), std::string::npos) << one.out;
  EXPECT_EQ(Slurp(dir() + "/late/pred.json"), Slurp(out + "/late/pred.json"));
  EXPECT_EQ(Slurp(dir() + "/late/gt.json"), Slurp(out + "/gt.json"));
}

TEST_F(InferFusionCli, ContradictoryFlagsAreOneLineErrors) {
  const std::string base = std::string("infer ") + kModels + " --out " + dir() + "/x ";
  ExpectOneLineError(base + "--fusion sideways", "--fusion must be");
  ExpectOneLineError(base + "--fusion late --no-codebook", "--no-codebook");
  ExpectOneLineError(base + "--fusion early --ego-only", "--ego-only");
  ExpectOneLineError(base +
                         "--stage1-config configs/cpu/stage1.yaml "
                         "--stage1-checkpoint models/cpu-stage1.pth",
                     "--fusion all");
  ExpectOneLineError(base + "--fusion all --render " + dir() + "/png", "--render");
}

}  // namespace
