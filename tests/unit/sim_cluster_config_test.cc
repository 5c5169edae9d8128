// Optional blocks of a scene file's `cluster:` section: `security` (docs/deploy.md: TLS
// folder, mutual TLS, the control token) and `dataset` (docs/datasets.md: a folder played
// back instead of the simulation); errors name the key path.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/sim/cluster_config.h"

namespace qv2x::sim {
namespace {

constexpr char kCluster[] = R"(cluster:
  model: {config: configs/tiny/stage3.yaml, checkpoint: "", int8_artifact: ""}
  codec: zstd
  pace: lockstep
  precision: fp32
  agent_threads: 1
  fusion: {grpc_port: 0, metrics_port: 0, deadline_ms: 2000, ap_window_frames: 50, threads: 1}
  agents: {grpc_port_base: 0, metrics_port_base: 0}
  trainer: {enabled: false, grpc_port: 0, metrics_port: 0, artifacts: artifacts}
  quantizer: {enabled: false, grpc_port: 0, metrics_port: 0, artifacts: artifacts}
)";

absl::StatusOr<ClusterConfig> Load(const std::string& block) {
  const std::string path = std::filesystem::temp_directory_path() /
                           ("qv2x_cluster_config_" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(path) << kCluster << block;
  auto c = LoadClusterConfig(path);
  std::filesystem::remove(path);
  return c;
}

TEST(ClusterSecurity, AbsentBlockMeansPlaintextWithoutToken) {
  auto c = Load("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->security.tls_dir, "");
  EXPECT_FALSE(c->security.mutual_tls);
  EXPECT_EQ(c->security.auth_token_file, "");
}

TEST(ClusterSecurity, BlockIsRead) {
  auto c = Load("  security: {tls_dir: certs, mutual_tls: true, auth_token_file: certs/token}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->security.tls_dir, "certs");
  EXPECT_TRUE(c->security.mutual_tls);
  EXPECT_EQ(c->security.auth_token_file, "certs/token");
}

TEST(ClusterSecurity, ErrorsNameTheKey) {
  auto no_dir = Load("  security: {tls_dir: \"\", mutual_tls: true, auth_token_file: \"\"}\n");
  ASSERT_FALSE(no_dir.ok());
  EXPECT_NE(no_dir.status().message().find("cluster.security.mutual_tls"), std::string::npos)
      << no_dir.status();
  auto missing = Load("  security: {tls_dir: certs, mutual_tls: true}\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("auth_token_file"), std::string::npos)
      << missing.status();
  auto unknown =
      Load("  security: {tls_dir: certs, mutual_tls: true, auth_token_file: \"\", tls_ca: x}\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("tls_ca"), std::string::npos) << unknown.status();
}

TEST(ClusterDataset, BlockIsOptionalAndRead) {
  auto none = Load("");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->dataset.path, "");
  auto c = Load("  dataset: {path: data/v2x_real/test, mode: ic}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->dataset.path, "data/v2x_real/test");
  EXPECT_EQ(c->dataset.mode, "ic");
  EXPECT_EQ(c->dataset.missing_agent, "skip");
  auto bad = Load("  dataset: {path: d, missing_agent: wait}\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cluster.dataset.missing_agent"), std::string::npos)
      << bad.status();
  auto empty = Load("  dataset: {path: \"\"}\n");
  EXPECT_FALSE(empty.ok());
}

}  // namespace
}  // namespace qv2x::sim
