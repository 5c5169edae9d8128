// `qv2x model summary|init` end to end: runs the built binary from the repository root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/cli/cli_test_util.h"

namespace {

using ::qv2x::testing::CliResult;
using ::testing::HasSubstr;

class ModelCli : public ::qv2x::testing::CliTest {};

TEST_F(ModelCli, SummaryJsonAtV2xRealStage3) {
  CliResult r = Run("model summary --config configs/v2x_real/stage3.yaml --json");
  ASSERT_EQ(r.exit_code, 0) << r.Combined();
  const nlohmann::json j = nlohmann::json::parse(r.Combined(), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.Combined();
  const int64_t params = j["parameters"];
  EXPECT_NEAR(static_cast<double>(params), 5.6e6, 0.05 * 5.6e6);
  EXPECT_EQ(j["fp32_bytes"], 4 * params);
  int64_t sum = 0;
  std::map<std::string, int64_t> by_name;
  for (const auto& m : j["modules"]) {
    sum += m["parameters"].get<int64_t>();
    by_name[m["name"]] = m["parameters"];
  }
  EXPECT_EQ(sum, params);
  EXPECT_EQ(by_name["encoder_m1"], 768);
  EXPECT_EQ(by_name["backbone_m1"], 226176);
  EXPECT_EQ(by_name["pyramid_backbone"], 3757635);
  EXPECT_EQ(by_name["shrink_conv"], 1475072);
  EXPECT_EQ(by_name["codebook"], 8192);
  EXPECT_EQ(j["grid"]["feature_w"], 352);
}

TEST_F(ModelCli, SummaryTextAndInit) {
  CliResult s = Run("model summary --config configs/tiny/stage1.yaml");
  ASSERT_EQ(s.exit_code, 0) << s.Combined();
  EXPECT_THAT(s.Combined(), HasSubstr("pyramid_backbone"));
  EXPECT_THAT(s.Combined(), HasSubstr("total"));
  EXPECT_THAT(s.Combined(), HasSubstr("64 x 32"));

  // The output folder does not exist yet: `model init` creates it.
  const std::string pth = dir() + "/model/init.pth";
  CliResult i = Run("model init --config configs/tiny/stage2.yaml --out " + pth + " --seed 3");
  ASSERT_EQ(i.exit_code, 0) << i.Combined();
  EXPECT_THAT(i.Combined(), HasSubstr("codebook "));
  EXPECT_TRUE(std::filesystem::file_size(pth) > 1000);
}

TEST_F(ModelCli, ErrorsAreOneLine) {
  CliResult missing = Run("model summary --config configs/nope.yaml");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_EQ(missing.Combined().find('\n'), missing.Combined().size() - 1) << missing.Combined();
  CliResult sub = Run("model frobnicate --config configs/tiny/stage1.yaml");
  EXPECT_NE(sub.exit_code, 0);
  EXPECT_THAT(sub.Combined(), HasSubstr("summary"));
  CliResult bad =
      Run("model summary --config configs/tiny/stage1.yaml --set "
          "model.args.shrink_header.input_dim=40");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.Combined(), HasSubstr("shrink_header.input_dim"));
  CliResult help = Run("model --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.Combined(), HasSubstr("qv2x model init"));
}

}  // namespace
