// `qv2x config check` end to end: runs the built binary from the repository root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "nlohmann/json.hpp"

namespace {

using ::testing::HasSubstr;

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

Result Qv2x(const std::string& args) {
  const char* build = std::getenv("QV2X_BUILD_DIR");
  const std::string cmd = std::string(build ? build : "build") + "/bin/qv2x " + args + " 2>&1";
  Result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(CliConfigTest, SummaryOfV2xRealStage3) {
  Result r = Qv2x("config check --config configs/v2x_real/stage3.yaml");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("configs/v2x_real/stage3.yaml: OK"));
  EXPECT_THAT(r.out, HasSubstr("heter_pyramid_collab_codebook_mc"));
  EXPECT_THAT(r.out, HasSubstr("704 x 200 pillars"));
  EXPECT_THAT(r.out, HasSubstr("6 per location"));
  EXPECT_THAT(r.out, HasSubstr("batch 4, 10 epochs"));
}

TEST(CliConfigTest, JsonCarriesParsedValuesAndOverrides) {
  Result r = Qv2x(
      "config check --config configs/tiny/stage2.yaml --set train_params.epoches=5 "
      "--set model.args.codebook.dict_size=32 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["stage"], 2);
  EXPECT_EQ(j["train_params"]["epoches"], 5);
  EXPECT_EQ(j["model"]["core_method"], "heter_pyramid_collab_codebook_mc");
  EXPECT_EQ(j["model"]["args"]["codebook"]["dict_size"], 32);
  EXPECT_EQ(j["derived"]["grid_w"], 64);
  EXPECT_EQ(j["derived"]["grid_h"], 32);
  EXPECT_EQ(j["postprocess"]["anchor_args"]["classes"].size(), 3u);
  EXPECT_EQ(j["postprocess"]["anchor_args"]["classes"][2]["name"], "truck");
}

TEST(CliConfigTest, BadValuePrintsKeyPathAndFails) {
  Result r =
      Qv2x("config check --config configs/tiny/stage1.yaml --set train_params.batch_size=eight");
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.out,
              HasSubstr("train_params.batch_size: expected a positive integer, got \"eight\""));
}

TEST(CliConfigTest, MisspeltOverrideAndMissingFileFail) {
  Result typo = Qv2x("config check --config configs/tiny/stage1.yaml --set train_params.epoch=2");
  EXPECT_NE(typo.code, 0);
  EXPECT_THAT(typo.out, HasSubstr("train_params.epoch: no such key"));
  Result missing = Qv2x("config check --config configs/tiny/nope.yaml");
  EXPECT_NE(missing.code, 0);
  EXPECT_THAT(missing.out, HasSubstr("configs/tiny/nope.yaml"));
  Result no_sub = Qv2x("config --config configs/tiny/stage1.yaml");
  EXPECT_NE(no_sub.code, 0);
}

TEST(CliConfigTest, HelpDescribesFlags) {
  Result r = Qv2x("config --help");
  ASSERT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--set key.path=value"));
  EXPECT_THAT(r.out, HasSubstr("--json"));
}

}  // namespace
