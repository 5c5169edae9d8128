// The tiny scene's fusion service and agents as real processes on 127.0.0.1, for the
// cluster and fault tests: a gtest fixture that starts and stops them, a subscriber that
// keeps every fused frame, and small probes (health, metrics, resident memory).
#ifndef QV2X_TESTS_INTEGRATION_HARNESS_CLUSTER_H_
#define QV2X_TESTS_INTEGRATION_HARNESS_CLUSTER_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "qv2x/v1/features.grpc.pb.h"
#include "tests/integration/harness/process.h"
#include "tests/integration/harness/prometheus_text.h"

namespace qv2x::testing {

inline constexpr char kTinyScene[] = "configs/scenes/tiny.yaml";
inline constexpr char kTinyConfig[] = "configs/tiny/stage3.yaml";
inline const std::vector<int> kTinyAgents = {0, 1, -1};  // 2 vehicles + 1 roadside unit

// A port that was free a moment ago (for a service that must come back on the same one),
// below the kernel's ephemeral range: while the service is down, no client socket of
// another test can be given it as its local port.
int FreePort();
// The server at 127.0.0.1:`port` answers grpc.health.v1 with SERVING.
bool Serving(int port);
// VmRSS of a process from /proc, in bytes; -1 when it cannot be read.
int64_t ResidentBytes(pid_t pid);
std::set<int> AgentsOf(const v1::DetectionFrame& f);

// Collects every DetectionFrame the fusion service publishes; re-subscribes when the
// service restarts.
class FrameCollector {
 public:
  explicit FrameCollector(int port);
  ~FrameCollector();
  // Waits until `n` frames arrived in total; returns a copy of all of them.
  std::vector<v1::DetectionFrame> WaitFor(size_t n, double timeout_s);
  size_t size();

 private:
  void Loop();
  int port_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  grpc::ClientContext* ctx_ = nullptr;
  std::vector<v1::DetectionFrame> frames_;
  std::thread thread_;
};

// Fusion (3 s frame deadline) and lock-step zstd agents on the tiny scene, started on
// free ports with their logs in a fresh folder; all killed at the end of the test.
class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  void StartFusion(int port = 0, std::vector<std::string> extra = {});
  void StartAgent(int id, std::vector<std::string> extra = {});
  void StartAll(std::vector<std::string> agent_extra = {});

  Samples Metrics(int port);
  std::string Logs();

  std::string dir_;
  std::unique_ptr<ChildProcess> fusion_;
  Ports fusion_ports_;
  std::unique_ptr<FrameCollector> frames_;
  std::map<int, std::unique_ptr<ChildProcess>> agents_;
  std::map<int, Ports> agent_ports_;
};

}  // namespace qv2x::testing

#endif  // QV2X_TESTS_INTEGRATION_HARNESS_CLUSTER_H_
