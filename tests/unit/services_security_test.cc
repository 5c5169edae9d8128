// The security pieces of services/ that need no running server: token files, which RPCs
// are read-only, model path confinement, and the refusals of inconsistent TLS settings.
// tests/integration/security_test.cc runs them end to end.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "google/protobuf/descriptor.h"
#include "services/control_auth.h"
#include "services/model_paths.h"
#include "services/tls_credentials.h"

namespace qv2x::services {
namespace {

namespace fs = std::filesystem;

class SecurityUnitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("qv2x_security_unit_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "artifacts");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

TEST_F(SecurityUnitTest, TokenFileIsOneWordOfPrintableAscii) {
  auto t = ReadTokenFile(Write("token", "  s3cret-token\n"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "s3cret-token");
  EXPECT_FALSE(ReadTokenFile(Write("empty", "\n")).ok());
  EXPECT_FALSE(ReadTokenFile(Write("two", "two words")).ok());
  auto missing = ReadTokenFile((dir_ / "missing").string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("missing"), std::string::npos);
}

TEST_F(SecurityUnitTest, OnlyStatusWatchAndFeatureRpcsAreReadOnly) {
  for (const char* m : {"/qv2x.v1.Fusion/GetStatus", "/qv2x.v1.Fusion/WatchDetections",
                        "/qv2x.v1.Fusion/StreamFeatures", "/qv2x.v1.AgentControl/GetStatus",
                        "/qv2x.v1.Trainer/ListJobs", "/grpc.health.v1.Health/Check"}) {
    EXPECT_TRUE(IsReadOnlyMethod(m)) << m;
  }
  for (const char* m : {"/qv2x.v1.Fusion/SetPrecision", "/qv2x.v1.Fusion/LoadModel",
                        "/qv2x.v1.Fusion/RetireCodebook", "/qv2x.v1.AgentControl/LoadModel",
                        "/qv2x.v1.AgentControl/SetSparsity", "/qv2x.v1.Trainer/RunStage",
                        "/qv2x.v1.Trainer/CancelJob", "/qv2x.v1.Quantizer/Quantize",
                        "/qv2x.v1.Quantizer/CancelQuantize", "/qv2x.v1.Fusion/SomeFutureRpc", ""}) {
    EXPECT_FALSE(IsReadOnlyMethod(m)) << m;
  }
}

TEST_F(SecurityUnitTest, ConfinedAgentControlPassesEveryRpcOfTheService) {
  const google::protobuf::ServiceDescriptor* d =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName("qv2x.v1.AgentControl");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->method_count(), ConfinedAgentControl::kMethods)
      << "an RPC was added to agent.proto: pass it through in services/model_paths.cc";
}

TEST_F(SecurityUnitTest, ModelPathsOutsideTheArtifactsFolderAreRefusedByField) {
  const std::string root = (dir_ / "artifacts").string();
  Write("artifacts/model.pth", "x");
  auto ok = ConfineModelPaths(root, "model.pth", "");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->checkpoint, fs::canonical(dir_ / "artifacts/model.pth").string());
  EXPECT_EQ(ok->int8_artifact, "");
  fs::create_symlink(Write("outside.pth", "x"), dir_ / "artifacts/link.pth");
  for (const auto& [ckpt, int8, field] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"../outside.pth", "", "checkpoint"},
           {(dir_ / "outside.pth").string(), "", "checkpoint"},
           {"link.pth", "", "checkpoint"},
           {"model.pth", "/etc/hostname", "int8_artifact"}}) {
    auto st = ConfineModelPaths(root, ckpt, int8).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << ckpt << int8;
    EXPECT_EQ(st.message().rfind(field + ":", 0), 0u) << st.message();
  }
}

TEST_F(SecurityUnitTest, InconsistentTlsSettingsAreRefusedWithTheFlag) {
  const std::string pem = Write("x.pem", "-----BEGIN CERTIFICATE-----\n");
  auto refused = [](const ServerSecurity& s, const std::string& listen) {
    auto c = BuildServerCredentials(s, listen);
    return c.ok() ? std::string() : std::string(c.status().message());
  };
  EXPECT_NE(refused({{pem, "", ""}, ""}, "127.0.0.1:0").find("--tls_key"), std::string::npos);
  EXPECT_NE(refused({{"", "", pem}, ""}, "127.0.0.1:0").find("--tls_ca"), std::string::npos);
  EXPECT_NE(refused({{pem, Write("k", "not pem"), ""}, ""}, "127.0.0.1:0").find("not a PEM"),
            std::string::npos);
  const std::string token = Write("token", "t");
  EXPECT_NE(refused({{}, token}, "0.0.0.0:50080").find("plaintext"), std::string::npos);
  EXPECT_EQ(refused({{}, token}, "127.0.0.1:50080"), "") << "loopback: local credentials";
  EXPECT_EQ(refused({{}, token}, "[::1]:50080"), "");
  EXPECT_EQ(refused({{}, ""}, "0.0.0.0:50080"), "") << "no token: plaintext as before";

  EXPECT_FALSE(ClientSecurity::Load({pem, pem, ""}, "").ok()) << "a client cert needs a CA";
  EXPECT_FALSE(ClientSecurity::Load({pem, "", pem}, "").ok()) << "and its key";
  auto c = ClientSecurity::Load({"", "", pem}, token);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->tls());
  EXPECT_EQ(c->token, "t");
}

}  // namespace
}  // namespace qv2x::services
