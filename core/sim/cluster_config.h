// The optional `cluster:` section of a scene file: which model the services run, how
// agents encode and pace, and the ports the local launcher (`qv2x scene up`) and the
// compose file use. Every key is explicit; errors name the key path.
#ifndef QV2X_CORE_SIM_CLUSTER_CONFIG_H_
#define QV2X_CORE_SIM_CLUSTER_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"

namespace qv2x::sim {

struct ServicePorts {
  int grpc_port = 0;
  int metrics_port = 0;
};

struct OptionalService {
  bool enabled = false;
  ServicePorts ports;
  std::string artifacts;  // folder the service may write to
};

struct ClusterConfig {
  // Model: the stage YAML and its stage-3 weights. An absent checkpoint file means "not
  // trained yet": every service then builds the same seeded initial model.
  std::string model_config;
  std::string checkpoint;
  std::string int8_artifact;  // optional INT8 agent encoder; empty: none
  std::string codec;          // bitpack | zstd
  std::string pace;           // realtime (scene rate) | lockstep (as fast as fusion goes)
  std::string precision;      // fp32 | int8 at start
  int agent_threads = 1;      // intra-op threads per agent process
  ServicePorts fusion;
  int fusion_deadline_ms = 0;  // fuse with whoever arrived this long after the first
  int ap_window_frames = 0;    // rolling AP window
  int fusion_threads = 1;
  // Agent k of the scene's agent list (scene order) listens on base + k.
  int agent_grpc_port_base = 0;
  int agent_metrics_port_base = 0;
  OptionalService trainer, quantizer;

  // Ports of agent k (scene order): base + k, or 0 (the OS picks) where a base is 0.
  ServicePorts AgentPorts(size_t k) const;
};

// The `cluster` section of the scene file `path`; NotFound when the file has none.
absl::StatusOr<ClusterConfig> LoadClusterConfig(const std::string& path);

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_CLUSTER_CONFIG_H_
