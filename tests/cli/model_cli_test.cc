// `qv2x model summary|init` end to end: runs the built binary from the repository root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
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

TEST(ModelCli, SummaryJsonAtV2xRealStage3) {
  Result r = Qv2x("model summary --config configs/v2x_real/stage3.yaml --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
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

TEST(ModelCli, SummaryTextAndInit) {
  Result s = Qv2x("model summary --config configs/tiny/stage1.yaml");
  ASSERT_EQ(s.code, 0) << s.out;
  EXPECT_THAT(s.out, HasSubstr("pyramid_backbone"));
  EXPECT_THAT(s.out, HasSubstr("total"));
  EXPECT_THAT(s.out, HasSubstr("64 x 32"));

  const std::string dir =
      (std::filesystem::temp_directory_path() / ("qv2x_model_cli_" + std::to_string(::getpid())))
          .string();
  Result i =
      Qv2x("model init --config configs/tiny/stage2.yaml --out " + dir + "/init.pth --seed 3");
  ASSERT_EQ(i.code, 0) << i.out;
  EXPECT_THAT(i.out, HasSubstr("codebook "));
  EXPECT_TRUE(std::filesystem::file_size(dir + "/init.pth") > 1000);
  std::filesystem::remove_all(dir);
}

TEST(ModelCli, ErrorsAreOneLine) {
  Result missing = Qv2x("model summary --config configs/nope.yaml");
  EXPECT_NE(missing.code, 0);
  EXPECT_EQ(missing.out.find('\n'), missing.out.size() - 1) << missing.out;
  Result sub = Qv2x("model frobnicate --config configs/tiny/stage1.yaml");
  EXPECT_NE(sub.code, 0);
  EXPECT_THAT(sub.out, HasSubstr("summary"));
  Result bad = Qv2x(
      "model summary --config configs/tiny/stage1.yaml --set "
      "model.args.shrink_header.input_dim=40");
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.out, HasSubstr("shrink_header.input_dim"));
  Result help = Qv2x("model --help");
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, HasSubstr("qv2x model init"));
}

}  // namespace
