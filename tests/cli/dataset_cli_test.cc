// `qv2x dataset import`: the real VLP-16 sweep Debian's mrpt-common ships becomes a dataset
// folder that the shipped CPU-preset model runs on (its encoder, the codebook indices and a
// one-agent fusion, through `qv2x infer --dataset`); bad input is one line on stderr.
#include <filesystem>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/cli_test_util.h"

namespace {

constexpr char kRawlog[] = "/usr/share/mrpt/datasets/test_velodyne_VLP16.rawlog";

class DatasetCli : public ::qv2x::testing::CliTest {};

TEST_F(DatasetCli, RealVlp16SweepRunsThroughTheShippedModel) {
  if (!std::filesystem::exists(kRawlog)) GTEST_SKIP() << "mrpt-common is not installed";
  const std::string data = dir() + "/vlp16";
  auto imp = Run(std::string("dataset import --rawlog ") + kRawlog + " --out " + data +
                 " --scenario street --pcd binary_compressed");
  ASSERT_EQ(imp.exit_code, 0) << imp.Combined();
  EXPECT_NE(imp.out.find("street: 75 packets, 22591 points"), std::string::npos) << imp.out;
  EXPECT_TRUE(std::filesystem::exists(data + "/street/0/000000.pcd"));
  EXPECT_TRUE(std::filesystem::exists(data + "/street/0/000000.yaml"));

  auto infer =
      Run("infer --config configs/cpu/stage3.yaml --checkpoint models/cpu-stage3.pth "
          "--dataset " +
          data + " --out " + dir() + "/out --render " + dir() + "/png");
  ASSERT_EQ(infer.exit_code, 0) << infer.Combined();
  const auto pred = nlohmann::json::parse(Slurp(dir() + "/out/pred.json"));
  ASSERT_EQ(pred["frames"].size(), 1u);
  for (const auto& b : pred["frames"][0]["boxes"]) {
    EXPECT_TRUE(std::isfinite(b["x"].get<double>()));
    EXPECT_GE(b["score"].get<double>(), 0.0);
  }
  EXPECT_TRUE(std::filesystem::exists(dir() + "/png/frame_000000.png"));
}

TEST_F(DatasetCli, BadInputIsOneLineOnStderr) {
  ExpectOneLineError("dataset import --rawlog /nonexistent.rawlog --out " + dir(),
                     "/nonexistent.rawlog");
  ExpectOneLineError(
      "dataset import --rawlog " + Write("x.rawlog", "not a rawlog") + " --out " + dir(),
      "x.rawlog: byte 0 is not an MRPT object header");
  ExpectOneLineError("dataset export --out " + dir(), "expected a subcommand");
  ExpectOneLineError("dataset import --rawlog a --out b --pcd lzma", "PCD data layout \"lzma\"");
}

}  // namespace
