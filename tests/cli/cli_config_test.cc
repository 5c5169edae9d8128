// `qv2x config check` end to end: runs the built binary from the repository root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "nlohmann/json.hpp"
#include "tests/cli/cli_test_util.h"

namespace {

using ::qv2x::testing::CliResult;
using ::testing::HasSubstr;

class CliConfigTest : public ::qv2x::testing::CliTest {};

TEST_F(CliConfigTest, SummaryOfV2xRealStage3) {
  CliResult r = Run("config check --config configs/v2x_real/stage3.yaml");
  ASSERT_EQ(r.exit_code, 0) << r.Combined();
  EXPECT_THAT(r.Combined(), HasSubstr("configs/v2x_real/stage3.yaml: OK"));
  EXPECT_THAT(r.Combined(), HasSubstr("heter_pyramid_collab_codebook_mc"));
  EXPECT_THAT(r.Combined(), HasSubstr("704 x 200 pillars"));
  EXPECT_THAT(r.Combined(), HasSubstr("6 per location"));
  EXPECT_THAT(r.Combined(), HasSubstr("batch 4, 10 epochs"));
}

TEST_F(CliConfigTest, JsonCarriesParsedValuesAndOverrides) {
  CliResult r =
      Run("config check --config configs/tiny/stage2.yaml --set train_params.epoches=5 "
          "--set model.args.codebook.dict_size=32 --json");
  ASSERT_EQ(r.exit_code, 0) << r.Combined();
  const nlohmann::json j = nlohmann::json::parse(r.Combined(), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.Combined();
  EXPECT_EQ(j["stage"], 2);
  EXPECT_EQ(j["train_params"]["epoches"], 5);
  EXPECT_EQ(j["model"]["core_method"], "heter_pyramid_collab_codebook_mc");
  EXPECT_EQ(j["model"]["args"]["codebook"]["dict_size"], 32);
  EXPECT_EQ(j["derived"]["grid_w"], 64);
  EXPECT_EQ(j["derived"]["grid_h"], 32);
  EXPECT_EQ(j["postprocess"]["anchor_args"]["classes"].size(), 3u);
  EXPECT_EQ(j["postprocess"]["anchor_args"]["classes"][2]["name"], "truck");
}

TEST_F(CliConfigTest, BadValuePrintsKeyPathAndFails) {
  CliResult r =
      Run("config check --config configs/tiny/stage1.yaml --set train_params.batch_size=eight");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.Combined(),
              HasSubstr("train_params.batch_size: expected a positive integer, got \"eight\""));
}

TEST_F(CliConfigTest, MisspeltOverrideAndMissingFileFail) {
  CliResult typo = Run("config check --config configs/tiny/stage1.yaml --set train_params.epoch=2");
  EXPECT_NE(typo.exit_code, 0);
  EXPECT_THAT(typo.Combined(), HasSubstr("train_params.epoch: no such key"));
  CliResult missing = Run("config check --config configs/tiny/nope.yaml");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.Combined(), HasSubstr("configs/tiny/nope.yaml"));
  CliResult no_sub = Run("config --config configs/tiny/stage1.yaml");
  EXPECT_NE(no_sub.exit_code, 0);
}

TEST_F(CliConfigTest, HelpDescribesFlags) {
  CliResult r = Run("config --help");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.Combined(), HasSubstr("--set key.path=value"));
  EXPECT_THAT(r.Combined(), HasSubstr("--json"));
}

}  // namespace
