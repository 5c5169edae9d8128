// `qv2x scene up`: runs a scene's services (fusion, one agent per scene agent, and the
// trainer / quantizer when the scene enables them) as child processes on 127.0.0.1, waits
// until every one reports SERVING, supervises them (a crashed service is restarted on its
// ports, up to a limit) and stops them all gracefully: SIGTERM, a grace period, then
// SIGKILL. Children also get SIGTERM from the kernel if the launcher itself dies, so no
// service outlives it. With the scene's `cluster.security` block every service runs TLS
// (mutual TLS, the control token) with the certificates of its folder, and endpoints.json
// records the client files so that later `qv2x` commands use them.
#ifndef QV2X_TOOLS_QV2X_CLIENT_SCENE_LAUNCHER_H_
#define QV2X_TOOLS_QV2X_CLIENT_SCENE_LAUNCHER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/sim/cluster_config.h"
#include "core/sim/scene_config.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "tools/qv2x/client/endpoints.h"

namespace qv2x::cli {

struct LaunchOptions {
  std::string scene_path;
  std::string run_dir;           // empty: .qv2x-run/<scene name>
  bool ephemeral_ports = false;  // port 0 everywhere (the OS picks; see endpoints.json)
  std::optional<std::string> codec, pace, precision, checkpoint;
  bool with_training = false;            // also start the trainer and the quantizer
  std::optional<std::string> artifacts;  // their artifacts folder (default: the scene's)
  // Override the scene's `cluster.security` block (TLS folder, mutual TLS, token file).
  std::optional<std::string> tls_dir, auth_token_file;
  std::optional<bool> mutual_tls;
  int num_agents = 0;  // the first N scene agents (the ego first); 0: all
  int max_cav = 0;     // agents fused per frame; 0: the model config's
  // false: the fusion service alone (a replay feeds it).
  bool start_agents = true;
  std::vector<std::string> fusion_flags;  // appended to qv2x-fusion's command line
  // Agents dial the address this returns for the fusion service's (e.g. a recording tee in
  // front of it); unset: the fusion service itself.
  std::function<std::string(const std::string& fusion_address)> agent_fusion_address;
  double startup_timeout_s = 300;
  bool verbose = true;
};

class SceneLauncher {
 public:
  static absl::StatusOr<std::unique_ptr<SceneLauncher>> Up(const LaunchOptions& options);
  ~SceneLauncher();

  const Endpoints& endpoints() const { return endpoints_; }
  const std::string& run_dir() const { return run_dir_; }

  // Supervises the services and aggregates fused frames until `frames` were fused (0:
  // until SIGINT / SIGTERM). Returns the run summary (see SceneSummary).
  absl::StatusOr<nlohmann::json> Run(int64_t frames, bool print_frames);
  // Stops every service (agents first, then fusion) and waits for them.
  void Down();

 private:
  struct Child {
    std::string name;
    std::vector<std::string> argv;
    std::string log;
    std::string port_file;
    pid_t pid = -1;
    int restarts = 0;
    bool running = false;
  };
  SceneLauncher() = default;
  // The --tls_* / --auth_token_file flags of the service whose certificate is `cert_name`.
  std::vector<std::string> SecurityArgs(const std::string& cert_name) const;
  absl::Status Spawn(Child& c);
  absl::Status WaitServing(Child& c, Endpoint* where);
  void Reap(bool restart);

  LaunchOptions options_;
  sim::SceneConfig scene_;
  sim::ClusterConfig cluster_;
  std::string run_dir_, bin_dir_;
  std::vector<int> agent_ids_;
  std::vector<Child> children_;  // fusion first
  Endpoints endpoints_;          // with the security the launcher's own clients use
  std::shared_ptr<grpc::Channel> Channel(const std::string& address) const;
  bool down_ = false;
};

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_CLIENT_SCENE_LAUNCHER_H_
