#include "tests/integration/harness/cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace qv2x::testing {

int FreePort() {
  // Linux's default ephemeral range starts at 32768; start each process somewhere else in
  // [20000, 32768) so that tests running side by side rarely try the same ports.
  constexpr int kLow = 20000, kHigh = 32768;
  static int next = kLow + static_cast<int>(::getpid() * 7919 % (kHigh - kLow));
  for (int tries = 0; tries < kHigh - kLow; ++tries) {
    const int port = next;
    next = next + 1 < kHigh ? next + 1 : kLow;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    if (free) return port;
  }
  return 0;
}

bool Serving(int port) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  grpc::health::v1::HealthCheckResponse resp;
  return stub->Check(&ctx, {}, &resp).ok() &&
         resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

int64_t ResidentBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      int64_t kib = -1;
      in >> kib;
      return kib < 0 ? -1 : kib * 1024;
    }
    in.ignore(1 << 16, '\n');
  }
  return -1;
}

std::set<int> AgentsOf(const v1::DetectionFrame& f) {
  std::set<int> s;
  for (const auto& a : f.agents()) s.insert(a.agent_id());
  return s;
}

FrameCollector::FrameCollector(int port) : port_(port) {
  thread_ = std::thread([this] { Loop(); });
}

FrameCollector::~FrameCollector() {
  stop_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  thread_.join();
}

std::vector<v1::DetectionFrame> FrameCollector::WaitFor(size_t n, double timeout_s) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < end) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (frames_.size() >= n) return frames_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::lock_guard<std::mutex> lock(mu_);
  return frames_;
}

size_t FrameCollector::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return frames_.size();
}

void FrameCollector::Loop() {
  auto stub = v1::Fusion::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials()));
  while (!stop_) {
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ctx_ = &ctx;
    }
    auto reader = stub->WatchDetections(&ctx, {});
    v1::DetectionFrame f;
    while (reader->Read(&f)) {
      std::lock_guard<std::mutex> lock(mu_);
      frames_.push_back(f);
    }
    reader->Finish().ok();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ctx_ = nullptr;
    }
    if (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void ClusterTest::SetUp() {
  dir_ = MakeTempDir("qv2x_cluster_");
  ASSERT_FALSE(dir_.empty());
}

void ClusterTest::TearDown() {
  frames_.reset();
  agents_.clear();
  fusion_.reset();
  std::filesystem::remove_all(dir_);
}

void ClusterTest::StartFusion(int port, std::vector<std::string> extra) {
  const std::string pf = dir_ + "/fusion.port";
  std::filesystem::remove(pf);
  std::vector<std::string> argv = {BuildDir() + "/bin/qv2x-fusion",
                                   absl::StrCat("--scene=", kTinyScene),
                                   absl::StrCat("--config=", kTinyConfig),
                                   absl::StrCat("--listen=127.0.0.1:", port),
                                   "--metrics=127.0.0.1:0",
                                   "--deadline_ms=3000",
                                   "--port_file=" + pf};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto p = ChildProcess::Start(argv, dir_ + "/fusion.log");
  ASSERT_TRUE(p.ok()) << p.status();
  fusion_ = std::move(*p);
  auto ports = WaitForPortFile(pf, 120, fusion_.get());
  ASSERT_TRUE(ports.ok()) << ports.status();
  fusion_ports_ = *ports;
  // Subscribed before any agent starts, so no fused frame is missed.
  frames_.reset();
  frames_ = std::make_unique<FrameCollector>(fusion_ports_.grpc);
}

void ClusterTest::StartAgent(int id, std::vector<std::string> extra) {
  const std::string pf = absl::StrCat(dir_, "/agent_", id, ".port");
  std::filesystem::remove(pf);
  std::vector<std::string> argv = {BuildDir() + "/bin/qv2x-agent",
                                   absl::StrCat("--scene=", kTinyScene),
                                   absl::StrCat("--config=", kTinyConfig),
                                   absl::StrCat("--agent_id=", id),
                                   absl::StrCat("--fusion=127.0.0.1:", fusion_ports_.grpc),
                                   "--listen=127.0.0.1:0",
                                   "--metrics=127.0.0.1:0",
                                   "--pace=lockstep",
                                   "--codec=zstd",
                                   "--port_file=" + pf};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto p = ChildProcess::Start(argv, absl::StrCat(dir_, "/agent_", id, ".log"));
  ASSERT_TRUE(p.ok()) << p.status();
  auto ports = WaitForPortFile(pf, 120, p->get());
  ASSERT_TRUE(ports.ok()) << ports.status();
  agent_ports_[id] = *ports;
  agents_[id] = std::move(*p);
}

void ClusterTest::StartAll(std::vector<std::string> agent_extra) {
  StartFusion();
  for (int id : kTinyAgents) StartAgent(id, agent_extra);
}

Samples ClusterTest::Metrics(int port) {
  auto text = HttpGet(port, "/metrics");
  EXPECT_TRUE(text.ok()) << text.status();
  auto s = ParsePrometheusText(text.ok() ? *text : "");
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : Samples{};
}

std::string ClusterTest::Logs() {
  std::string out = fusion_ ? "fusion:\n" + fusion_->Log() : "";
  for (auto& [id, p] : agents_) absl::StrAppend(&out, "agent ", id, ":\n", p->Log());
  return out;
}

}  // namespace qv2x::testing
