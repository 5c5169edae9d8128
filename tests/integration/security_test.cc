// Transport security and limits with real processes on 127.0.0.1: a throw-away CA and
// certificates from deploy/tls/make-certs.sh (openssl), the tiny scene's fusion service,
// its three agents, a trainer and a quantizer, all under mutual TLS with a control token.
// Shown: plaintext, certificate-less and foreign-CA clients are refused; certified agents
// are fused end to end; an agent cannot speak for another agent's id; control RPCs need
// the token; model paths stay inside the artifacts folder; hundreds of abandoned streams do
// not exhaust fusion; /metrics answers next to idle and slow-loris sockets; and
// `qv2x scene up` runs the scene with mutual TLS and the token.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "qv2x/v1/agent.grpc.pb.h"
#include "qv2x/v1/features.grpc.pb.h"
#include "qv2x/v1/quantizer.grpc.pb.h"
#include "qv2x/v1/trainer.grpc.pb.h"
#include "services/tls_credentials.h"
#include "tests/integration/harness/process.h"
#include "tests/integration/harness/prometheus_text.h"

namespace qv2x {
namespace {

using qv2x::testing::ChildProcess;
using qv2x::testing::Ports;
using Clock = std::chrono::steady_clock;

constexpr char kScene[] = "configs/scenes/tiny.yaml";
constexpr char kConfig[] = "configs/tiny/stage3.yaml";
const std::vector<int> kAgents = {0, 1, -1};

std::string Bin(const std::string& name) { return qv2x::testing::BuildDir() + "/bin/" + name; }

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// A field of /proc/<pid>/status ("Threads", "VmRSS" in kB).
long ProcStatus(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::vector<std::string> parts =
        absl::StrSplit(line.substr(field.size() + 1), ' ', absl::SkipWhitespace());
    long v = -1;
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &v)) return v;
  }
  return -1;
}

// Polls `pred` every 100 ms for up to `timeout_s`.
template <typename Pred>
bool WaitUntil(Pred pred, double timeout_s) {
  const auto start = Clock::now();
  while (Seconds(start) < timeout_s) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return pred();
}

int ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// GET /metrics; gives up after `timeout_s` without an answer (the harness' HttpGet would
// wait forever on an exhausted server).
absl::StatusOr<std::string> Scrape(int port, double timeout_s) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) return absl::UnavailableError("connect");
  timeval tv{static_cast<time_t>(timeout_s), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  const size_t body = resp.find("\r\n\r\n");
  if (body == std::string::npos) return absl::DeadlineExceededError("no answer");
  return resp.substr(body + 4);
}

class SecurityTest : public ::testing::Test {
 protected:
  // One cluster for the suite: starting it is most of the cost.
  static void SetUpTestSuite() {
    dir_ = new std::string(qv2x::testing::MakeTempDir("qv2x_security_"));
    certs_ = new std::string(*dir_ + "/certs");
    other_ = new std::string(*dir_ + "/other-ca");
    artifacts_ = new std::string(*dir_ + "/artifacts");
    std::filesystem::create_directories(*artifacts_);
    ASSERT_EQ(Run({"deploy/tls/make-certs.sh", *certs_}, "certs"), 0);
    // The same names from a CA nobody trusts.
    ASSERT_EQ(Run({"deploy/tls/make-certs.sh", *other_, "client", "agent-1"}, "other"), 0);
    std::ofstream(*dir_ + "/wrong-token") << "not-the-token\n";

    fusion_ = Start("fusion", Bin("qv2x-fusion"),
                    {absl::StrCat("--scene=", kScene), absl::StrCat("--config=", kConfig),
                     "--deadline_ms=1000", "--artifacts=" + *artifacts_},
                    &fusion_ports_)
                  .release();
    ASSERT_NE(fusion_, nullptr);
    const int64_t epoch_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    for (int id : kAgents) {
      const std::string name = absl::StrCat("agent-", id);
      auto a = Start(
          name, Bin("qv2x-agent"),
          {absl::StrCat("--scene=", kScene), absl::StrCat("--config=", kConfig),
           absl::StrCat("--agent_id=", id), absl::StrCat("--fusion=127.0.0.1:", fusion_ports_.grpc),
           "--fusion_tls_ca=" + *certs_ + "/ca.crt", "--pace=realtime",
           absl::StrCat("--epoch_ms=", epoch_ms), "--artifacts=" + *artifacts_},
          &(*agent_ports_)[id]);
      ASSERT_NE(a, nullptr);
      (*agents_)[id] = a.release();
    }
    for (const char* name : {"trainer", "quantizer"}) {
      auto s = Start(name, Bin(absl::StrCat("qv2x-", name)), {"--artifacts=" + *artifacts_},
                     &(*other_ports_)[name]);
      ASSERT_NE(s, nullptr);
      (*others_)[name] = s.release();
    }
  }

  static void TearDownTestSuite() {
    for (auto& [id, p] : *agents_) delete p;
    for (auto& [name, p] : *others_) delete p;
    delete fusion_;
    std::filesystem::remove_all(*dir_);
  }

  static int Run(const std::vector<std::string>& argv, const std::string& log) {
    auto p = ChildProcess::Start(argv, *dir_ + "/" + log + ".log");
    if (!p.ok()) return -1;
    const int rc = (*p)->Wait(300);
    if (rc != 0) std::fprintf(stderr, "%s\n", (*p)->Log().c_str());
    return rc;
  }

  // A service under mutual TLS with the control token, its certificate named `name`.
  static std::unique_ptr<ChildProcess> Start(const std::string& name, const std::string& bin,
                                             std::vector<std::string> args, Ports* ports) {
    const std::string pf = *dir_ + "/" + name + ".port";
    std::vector<std::string> argv = {bin,
                                     "--listen=127.0.0.1:0",
                                     "--metrics=127.0.0.1:0",
                                     "--port_file=" + pf,
                                     "--tls_cert=" + *certs_ + "/" + name + ".crt",
                                     "--tls_key=" + *certs_ + "/" + name + ".key",
                                     "--tls_ca=" + *certs_ + "/ca.crt",
                                     "--auth_token_file=" + *certs_ + "/token"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = ChildProcess::Start(argv, *dir_ + "/" + name + ".log");
    if (!p.ok()) return nullptr;
    auto got = qv2x::testing::WaitForPortFile(pf, 180, p->get());
    if (!got.ok()) {
      std::fprintf(stderr, "%s: %s\n%s\n", name.c_str(),
                   std::string(got.status().message()).c_str(), (*p)->Log().c_str());
      return nullptr;
    }
    *ports = *got;
    return std::move(*p);
  }

  // A client with the certificate `cert` ("" for none) of CA folder `ca_dir`, and the
  // token file `token` ("" for none).
  static std::shared_ptr<grpc::Channel> Channel(int port, const std::string& cert,
                                                const std::string& token = "",
                                                const std::string& ca_dir = *certs_) {
    services::TlsFiles tls;
    tls.ca = ca_dir + "/ca.crt";
    if (!cert.empty()) {
      tls.cert = ca_dir + "/" + cert + ".crt";
      tls.key = ca_dir + "/" + cert + ".key";
    }
    auto s = services::ClientSecurity::Load(tls, token);
    EXPECT_TRUE(s.ok()) << s.status();
    return services::NewChannel(absl::StrCat("127.0.0.1:", port), *s);
  }
  static std::string Token() { return *certs_ + "/token"; }

  static grpc::Status Health(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::health::v1::HealthCheckResponse resp;
    return stub->Check(&ctx, {}, &resp);
  }

  static grpc::Status FusionStatus(const std::shared_ptr<grpc::Channel>& channel,
                                   v1::FusionStatus* s) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return v1::Fusion::NewStub(channel)->GetStatus(&ctx, {}, s);
  }

  static uint64_t FramesFused() {
    v1::FusionStatus s;
    EXPECT_TRUE(FusionStatus(Channel(fusion_ports_.grpc, "client"), &s).ok());
    return s.frames_fused();
  }

  static qv2x::testing::Samples Metrics(int port) {
    auto text = Scrape(port, 30);
    EXPECT_TRUE(text.ok()) << text.status();
    auto s = qv2x::testing::ParsePrometheusText(text.ok() ? *text : "");
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : qv2x::testing::Samples{};
  }

  static inline std::string *dir_, *certs_, *other_, *artifacts_;
  static inline ChildProcess* fusion_ = nullptr;
  static inline Ports fusion_ports_;
  static inline auto* agents_ = new std::map<int, ChildProcess*>();
  static inline auto* agent_ports_ = new std::map<int, Ports>();
  static inline auto* others_ = new std::map<std::string, ChildProcess*>();
  static inline auto* other_ports_ = new std::map<std::string, Ports>();
};

TEST_F(SecurityTest, MutualTlsRefusesPlaintextCertificateLessAndForeignClients) {
  const std::string addr = absl::StrCat("127.0.0.1:", fusion_ports_.grpc);
  for (int port : {fusion_ports_.grpc, (*agent_ports_)[1].grpc, (*other_ports_)["trainer"].grpc}) {
    SCOPED_TRACE(port);
    EXPECT_TRUE(Health(Channel(port, "client")).ok()) << "a certified client is served";
    grpc::Status plain = Health(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE) << "plaintext";
    EXPECT_EQ(Health(Channel(port, "")).error_code(), grpc::StatusCode::UNAVAILABLE)
        << "TLS without a client certificate";
  }
  // A certificate from another CA: the server refuses it...
  {
    services::TlsFiles tls{*other_ + "/client.crt", *other_ + "/client.key", *certs_ + "/ca.crt"};
    auto s = services::ClientSecurity::Load(tls, "");
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(Health(services::NewChannel(addr, *s)).error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  // ...and a client that trusts only that other CA refuses the server.
  EXPECT_EQ(Health(Channel(fusion_ports_.grpc, "client", "", *other_)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecurityTest, CertifiedAgentsAreFusedAndNoneCanClaimAnotherId) {
  // The three agents (each with its own certificate) are fused together.
  auto channel = Channel(fusion_ports_.grpc, "client");
  grpc::ClientContext watch_ctx;
  auto watch = v1::Fusion::NewStub(channel)->WatchDetections(&watch_ctx, {});
  v1::DetectionFrame f;
  int full = 0;
  for (int i = 0; i < 200 && full < 3 && watch->Read(&f); ++i) full += f.agents_size() == 3;
  watch_ctx.TryCancel();
  watch->Finish().ok();
  EXPECT_EQ(full, 3) << "frames fused with all three certified agents";

  // agent-1's certificate speaking for agent 0, and the CLI's certificate for agent 1.
  const double before =
      qv2x::testing::SumOf(Metrics(fusion_ports_.metrics), "qv2x_fusion_rejected_messages_total",
                           {"reason=\"identity\""});
  for (const auto& [cert, id] : {std::make_pair("agent-1", 0), std::make_pair("client", 1)}) {
    SCOPED_TRACE(cert);
    auto stub = v1::Fusion::NewStub(Channel(fusion_ports_.grpc, cert));
    grpc::ClientContext ctx;
    auto stream = stub->StreamFeatures(&ctx);
    v1::FeatureMessage m;
    m.set_agent_id(id);
    m.set_frame_id(0);
    stream->Write(m);
    stream->WritesDone();
    v1::FeatureStreamReply reply;
    while (stream->Read(&reply)) {
    }
    grpc::Status st = stream->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
    EXPECT_NE(st.error_message().find(absl::StrCat("agent-", id)), std::string::npos)
        << st.error_message();
  }
  EXPECT_EQ(qv2x::testing::SumOf(Metrics(fusion_ports_.metrics),
                                 "qv2x_fusion_rejected_messages_total", {"reason=\"identity\""}),
            before + 2);
}

TEST_F(SecurityTest, ControlRpcsNeedTheBearerToken) {
  const std::string wrong = *dir_ + "/wrong-token";
  // Each control RPC: refused without the token and with a wrong one; with the right one it
  // reaches the service, which answers for itself (OK, or its own error for a bad request).
  struct Call {
    std::string name;
    int port;
    std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&)> run;
    grpc::StatusCode with_token;
  };
  const std::vector<Call> calls = {
      {"fusion SetPrecision", fusion_ports_.grpc,
       [](auto ch) {
         grpc::ClientContext ctx;
         v1::FusionPrecisionRequest req;
         req.set_precision(v1::PRECISION_FP32);
         v1::FusionStatus s;
         return v1::Fusion::NewStub(ch)->SetPrecision(&ctx, req, &s);
       },
       grpc::StatusCode::OK},
      {"fusion RetireCodebook", fusion_ports_.grpc,
       [](auto ch) {
         grpc::ClientContext ctx;
         v1::RetireCodebookRequest req;
         req.set_digest("0000000000000000");
         v1::FusionStatus s;
         return v1::Fusion::NewStub(ch)->RetireCodebook(&ctx, req, &s);
       },
       grpc::StatusCode::NOT_FOUND},
      {"agent SetPrecision", (*agent_ports_)[1].grpc,
       [](auto ch) {
         grpc::ClientContext ctx;
         v1::SetPrecisionRequest req;
         req.set_precision(v1::PRECISION_FP32);
         v1::ControlReply r;
         return v1::AgentControl::NewStub(ch)->SetPrecision(&ctx, req, &r);
       },
       grpc::StatusCode::OK},
      {"trainer CancelJob", (*other_ports_)["trainer"].grpc,
       [](auto ch) {
         grpc::ClientContext ctx;
         v1::CancelJobRequest req;
         req.set_job_id("no-such-job");
         v1::Job j;
         return v1::Trainer::NewStub(ch)->CancelJob(&ctx, req, &j);
       },
       grpc::StatusCode::NOT_FOUND},
      {"quantizer CancelQuantize", (*other_ports_)["quantizer"].grpc,
       [](auto ch) {
         grpc::ClientContext ctx;
         v1::CancelQuantizeRequest req;
         req.set_job_id("no-such-job");
         v1::CancelQuantizeResponse r;
         return v1::Quantizer::NewStub(ch)->CancelQuantize(&ctx, req, &r);
       },
       grpc::StatusCode::NOT_FOUND},
  };
  auto refused = [](const std::string& reason) {
    return qv2x::testing::SumOf(Metrics(fusion_ports_.metrics), "qv2x_rpc_unauthenticated_total",
                                {"reason=\"" + reason + "\""});
  };
  const double missing0 = refused("missing_token"), wrong0 = refused("wrong_token");
  for (const Call& c : calls) {
    SCOPED_TRACE(c.name);
    grpc::Status none = c.run(Channel(c.port, "client"));
    EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED) << none.error_message();
    EXPECT_NE(none.error_message().find("authorization: Bearer"), std::string::npos)
        << none.error_message();
    grpc::Status bad = c.run(Channel(c.port, "client", wrong));
    EXPECT_EQ(bad.error_code(), grpc::StatusCode::UNAUTHENTICATED) << bad.error_message();
    EXPECT_EQ(bad.error_message().find("not-the-token"), std::string::npos) << "not echoed";
    grpc::Status ok = c.run(Channel(c.port, "client", Token()));
    EXPECT_EQ(ok.error_code(), c.with_token) << ok.error_message();
  }
  // Read-only RPCs stay open to any certified client.
  v1::FusionStatus s;
  EXPECT_TRUE(FusionStatus(Channel(fusion_ports_.grpc, "client"), &s).ok());
  {
    grpc::ClientContext ctx;
    v1::ListJobsResponse jobs;
    EXPECT_TRUE(v1::Trainer::NewStub(Channel((*other_ports_)["trainer"].grpc, "client"))
                    ->ListJobs(&ctx, {}, &jobs)
                    .ok());
  }
  // Two fusion calls above, each refused once for each reason.
  EXPECT_EQ(refused("missing_token"), missing0 + 2);
  EXPECT_EQ(refused("wrong_token"), wrong0 + 2);
}

TEST_F(SecurityTest, ATokenWithoutTlsIsForLoopbackOnly) {
  const std::string pf = *dir_ + "/plain-trainer.port";
  auto p = ChildProcess::Start(
      {Bin("qv2x-trainer"), "--listen=127.0.0.1:0", "--metrics=", "--artifacts=" + *artifacts_,
       "--auth_token_file=" + Token(), "--port_file=" + pf},
      *dir_ + "/plain-trainer.log");
  ASSERT_TRUE(p.ok());
  auto ports = qv2x::testing::WaitForPortFile(pf, 120, p->get());
  ASSERT_TRUE(ports.ok()) << ports.status() << (*p)->Log();
  auto cancel = [&](const std::string& token) {
    auto s = services::ClientSecurity::Load({}, token);
    EXPECT_TRUE(s.ok());
    grpc::ClientContext ctx;
    v1::CancelJobRequest req;
    req.set_job_id("no-such-job");
    v1::Job j;
    return v1::Trainer::NewStub(services::NewChannel(absl::StrCat("127.0.0.1:", ports->grpc), *s))
        ->CancelJob(&ctx, req, &j);
  };
  EXPECT_EQ(cancel("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(cancel(Token()).error_code(), grpc::StatusCode::NOT_FOUND);
  // Every interface with a plaintext token: refused at start-up, before listening.
  auto open = ChildProcess::Start({Bin("qv2x-trainer"), "--listen=0.0.0.0:0", "--metrics=",
                                   "--artifacts=" + *artifacts_, "--auth_token_file=" + Token()},
                                  *dir_ + "/open-trainer.log");
  ASSERT_TRUE(open.ok());
  EXPECT_EQ((*open)->Wait(60), 1);
  EXPECT_NE((*open)->Log().find("plaintext"), std::string::npos) << (*open)->Log();
}

TEST_F(SecurityTest, ModelPathsStayInsideTheArtifactsFolder) {
  const std::string outside = *dir_ + "/outside.pth";
  std::ofstream(outside) << "not a model";
  std::filesystem::create_symlink(outside, *artifacts_ + "/link.pth");
  auto agent = v1::AgentControl::NewStub(Channel((*agent_ports_)[1].grpc, "client", Token()));
  auto load = [&](const std::string& ckpt, const std::string& int8) {
    grpc::ClientContext ctx;
    v1::LoadModelRequest req;
    req.set_checkpoint(ckpt);
    req.set_int8_artifact(int8);
    v1::ControlReply r;
    return agent->LoadModel(&ctx, req, &r);
  };
  for (const auto& [ckpt, int8, field] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"../outside.pth", "", "checkpoint"},
           {outside, "", "checkpoint"},
           {"link.pth", "", "checkpoint"},
           {"", "/etc/hostname", "int8_artifact"}}) {
    SCOPED_TRACE(ckpt + int8);
    grpc::Status st = load(ckpt, int8);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_EQ(st.error_message().rfind(field + ":", 0), 0u) << st.error_message();
  }
  // Fusion's LoadModel the same way; its model stays the one it had.
  auto fusion = v1::Fusion::NewStub(Channel(fusion_ports_.grpc, "client", Token()));
  v1::FusionStatus before;
  ASSERT_TRUE(FusionStatus(Channel(fusion_ports_.grpc, "client"), &before).ok());
  for (const auto& [ckpt, int8, field] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"../outside.pth", "", "checkpoint"},
           {"link.pth", "", "checkpoint"},
           {"broken.pth", "/etc/hostname", "int8_artifact"}}) {
    SCOPED_TRACE(ckpt + int8);
    grpc::ClientContext ctx;
    v1::FusionLoadModelRequest req;
    req.set_checkpoint(ckpt);
    req.set_int8_artifact(int8);
    v1::FusionStatus status;
    grpc::Status st = fusion->LoadModel(&ctx, req, &status);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_EQ(st.error_message().rfind(field + ":", 0), 0u) << st.error_message();
  }
  v1::FusionStatus after;
  ASSERT_TRUE(FusionStatus(Channel(fusion_ports_.grpc, "client"), &after).ok());
  EXPECT_EQ(after.model_generation(), before.model_generation());
  EXPECT_EQ(after.checkpoint(), before.checkpoint());

  // Inside the folder the path reaches the loader, which judges the file itself.
  std::ofstream(*artifacts_ + "/broken.pth") << "not a model";
  grpc::Status inside = load("broken.pth", "");
  EXPECT_NE(inside.error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(inside.error_message().find("outside"), std::string::npos) << inside.error_message();
  EXPECT_NE(inside.error_message().find(*artifacts_ + "/broken.pth"), std::string::npos)
      << inside.error_message();

  // The trainer resolves its inputs the same way: a symlink out of its folder is refused.
  grpc::ClientContext ctx;
  v1::RunStageRequest req;
  req.set_stage(3);
  req.set_config_path(kConfig);
  req.set_from_checkpoint("link.pth");
  auto stream = v1::Trainer::NewStub(Channel((*other_ports_)["trainer"].grpc, "client", Token()))
                    ->RunStage(&ctx, req);
  v1::TrainProgress p;
  while (stream->Read(&p)) {
  }
  grpc::Status st = stream->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("from_checkpoint"), std::string::npos) << st.error_message();
}

TEST_F(SecurityTest, AbandonedStreamsDoNotExhaustFusion) {
  const pid_t pid = fusion_->pid();
  const long threads0 = ProcStatus(pid, "Threads"), rss0 = ProcStatus(pid, "VmRSS");
  auto hog = [&](int connections, int watch, int features) {
    return ChildProcess::Start(
        {Bin("security_stream_hog"), absl::StrCat("127.0.0.1:", fusion_ports_.grpc),
         *certs_ + "/ca.crt", *certs_ + "/client.crt", *certs_ + "/client.key",
         std::to_string(connections), std::to_string(watch), std::to_string(features)},
        *dir_ + "/hog.log");
  };
  auto open_streams = [&](const char* rpc) {
    return qv2x::testing::SumOf(Metrics(fusion_ports_.metrics), "qv2x_fusion_open_streams",
                                {absl::StrCat("rpc=\"", rpc, "\"")});
  };
  const double watch0 = open_streams("WatchDetections"), feed0 = open_streams("StreamFeatures");
  // One connection asking for 300 watch streams gets 100 at a time (the per-connection
  // stream limit); the streaming RPCs are callback reactors, so they hold no thread.
  {
    auto h = hog(1, 300, 0);
    ASSERT_TRUE(h.ok());
    EXPECT_TRUE(WaitUntil([&] { return open_streams("WatchDetections") >= watch0 + 100; }, 60))
        << open_streams("WatchDetections") << " watchers, " << watch0 << " before";
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const long held = ProcStatus(pid, "Threads");
    std::fprintf(stderr,
                 "one connection, 300 watch streams asked: %.0f open, fusion threads %ld -> %ld\n",
                 open_streams("WatchDetections") - watch0, threads0, held);
    EXPECT_EQ(open_streams("WatchDetections"), watch0 + 100) << "the per-connection limit";
    EXPECT_LE(held, threads0 + 8) << "a thread per open stream";
  }  // the hog is killed here
  ASSERT_TRUE(WaitUntil([&] { return open_streams("WatchDetections") == watch0; }, 60));

  // 300 watch + 300 feature streams over 6 connections, never read: fusion keeps serving
  // others meanwhile, and frees them once the client is gone.
  auto h = hog(6, 300, 300);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        return open_streams("WatchDetections") >= watch0 + 300 &&
               open_streams("StreamFeatures") >= feed0 + 300;
      },
      60))
      << open_streams("WatchDetections") << " watchers, " << open_streams("StreamFeatures")
      << " feature streams";
  const long threads_held = ProcStatus(pid, "Threads"), rss_held = ProcStatus(pid, "VmRSS");
  EXPECT_LE(threads_held, threads0 + 8) << "a thread per open stream";
  const uint64_t fused = FramesFused();
  EXPECT_TRUE(WaitUntil([&] { return FramesFused() >= fused + 5; }, 120))
      << "the certified agents keep being fused next to 600 abandoned streams";
  EXPECT_TRUE(Health(Channel(fusion_ports_.grpc, "client")).ok());
  (*h)->Signal(SIGKILL);
  (*h)->Wait(10);
  EXPECT_TRUE(WaitUntil(
      [&] {
        return open_streams("WatchDetections") == watch0 &&
               open_streams("StreamFeatures") == feed0;
      },
      60));
  const long rss_after = ProcStatus(pid, "VmRSS");
  std::fprintf(stderr,
               "600 abandoned streams on 6 connections: fusion threads %ld -> %ld -> %ld, "
               "RSS %ld -> %ld -> %ld kB\n",
               threads0, threads_held, ProcStatus(pid, "Threads"), rss0, rss_held, rss_after);
  EXPECT_TRUE(Health(Channel(fusion_ports_.grpc, "client")).ok());
  const uint64_t fused_after = FramesFused();
  EXPECT_TRUE(WaitUntil([&] { return FramesFused() >= fused_after + 5; }, 120));
}

TEST_F(SecurityTest, MetricsAnswerNextToIdleAndSlowLorisSockets) {
  const int port = fusion_ports_.metrics;
  std::vector<int> idle, slow;
  for (int i = 0; i < 10; ++i) idle.push_back(ConnectLoopback(port));
  for (int i = 0; i < 5; ++i) slow.push_back(ConnectLoopback(port));
  for (int fd : idle) ASSERT_GE(fd, 0);
  for (int fd : slow) ASSERT_GE(fd, 0);
  // Slow-loris: a request one byte every half second, never finished.
  std::atomic<bool> stop{false};
  std::thread loris([&] {
    const std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    for (size_t i = 0; !stop; ++i) {
      for (int fd : slow) ::send(fd, &req[i % req.size()], 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Clock::now();
    absl::StatusOr<std::string> text = Scrape(port, 20);
    ASSERT_TRUE(text.ok()) << "scrape " << i << " next to 15 stalled sockets: " << text.status();
    EXPECT_NE(text->find("qv2x_fusion_frames_total"), std::string::npos);
    std::fprintf(stderr, "scrape %d next to 10 idle + 5 slow-loris sockets: %.3f s\n", i,
                 Seconds(t0));
  }
  // The server drops a socket that has not sent a whole request in time.
  char buf[512];
  timeval tv{20, 0};
  ::setsockopt(idle[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const auto t0 = Clock::now();
  ssize_t n;
  while ((n = ::read(idle[0], buf, sizeof(buf))) > 0) {
  }
  EXPECT_EQ(n, 0) << "an idle socket is closed by the server";
  std::fprintf(stderr, "idle socket closed by the server %.1f s after the scrapes\n", Seconds(t0));
  stop = true;
  loris.join();
  for (int fd : idle) ::close(fd);
  for (int fd : slow) ::close(fd);
}

// `qv2x scene up` with mutual TLS and the token: the scene runs, the control commands find
// the client files in endpoints.json, and a plaintext probe is refused.
TEST_F(SecurityTest, LauncherRunsTheSceneWithMutualTlsAndTheToken) {
  const std::string run = *dir_ + "/scene-run";
  auto launcher = ChildProcess::Start(
      {Bin("qv2x"), "scene", "up", "--config", kScene, "--run-dir", run, "--ephemeral-ports",
       "--tls-dir", *certs_, "--mtls", "--token-file", Token()},
      *dir_ + "/scene-up.log");
  ASSERT_TRUE(launcher.ok());
  const std::string endpoints = run + "/endpoints.json";
  ASSERT_TRUE(
      WaitUntil([&] { return std::filesystem::exists(endpoints) || !(*launcher)->Running(); }, 300))
      << (*launcher)->Log();
  ASSERT_TRUE(std::filesystem::exists(endpoints)) << (*launcher)->Log();
  const nlohmann::json e = nlohmann::json::parse(std::ifstream(endpoints));
  EXPECT_EQ(e["security"]["tls_cert"], *certs_ + "/client.crt");
  EXPECT_EQ(e["security"]["token_file"], Token());
  const std::string fusion = absl::StrCat("127.0.0.1:", e["fusion"]["grpc_port"].get<int>());
  auto cli = [&](std::vector<std::string> args, const std::string& log) {
    args.insert(args.begin(), Bin("qv2x"));
    auto p = ChildProcess::Start(args, *dir_ + "/" + log + ".log");
    EXPECT_TRUE(p.ok());
    const int rc = (*p)->Wait(120);
    return std::make_pair(rc, (*p)->Log());
  };
  auto [rc, out] = cli({"watch", "--endpoints", endpoints, "--frames", "3"}, "watch");
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) =
      cli({"agent", "set-precision", "--agent", "1", "fp32", "--endpoints", endpoints}, "set");
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = cli({"agent", "set-precision", "--agent", "1", "fp32", "--endpoints",
                           endpoints, "--token-file", *dir_ + "/wrong-token"},
                          "set-wrong");
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("wrong bearer token"), std::string::npos) << out;
  std::tie(rc, out) = cli({"health", fusion}, "plain-health");
  EXPECT_NE(rc, 0) << "plaintext probe of an mTLS fusion: " << out;
  std::tie(rc, out) = cli({"health", fusion, "--tls-ca", *certs_ + "/ca.crt", "--tls-cert",
                           *certs_ + "/client.crt", "--tls-key", *certs_ + "/client.key"},
                          "health");
  EXPECT_EQ(rc, 0) << out;
  (*launcher)->Signal(SIGTERM);
  EXPECT_EQ((*launcher)->Wait(60), 0) << (*launcher)->Log();
}

}  // namespace
}  // namespace qv2x
