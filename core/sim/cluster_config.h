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

// Optional `security:` block (docs/deploy.md): TLS from a folder of PEM files named as
// deploy/tls/make-certs.sh writes them (ca.crt; fusion, agent-<id>, trainer, quantizer,
// client .crt/.key), mutual TLS, and the bearer token of control RPCs.
struct ClusterSecurity {
  std::string tls_dir;          // empty: plaintext
  bool mutual_tls = false;      // servers require client certificates signed by ca.crt
  std::string auth_token_file;  // empty: control RPCs need no token
};

// Optional `dataset:` block: fusion and every agent play this folder back instead of
// simulating the scene (core/sim/scene_playback.h).
struct ClusterDataset {
  std::string path;                    // empty: simulate
  std::string mode = "vc";             // vc | v2v | ic | i2i
  std::string missing_agent = "skip";  // skip | stop
};

struct ClusterConfig {
  // Model: the stage YAML and its stage-3 weights. An absent checkpoint file means "not
  // trained yet": every service then builds the same seeded initial model.
  std::string model_config;
  std::string checkpoint;
  std::string int8_artifact;  // optional INT8 agent encoder; empty: none
  // zstd dictionary shipped with the codebook (`qv2x codec train-dict`); empty: none.
  std::string zstd_dictionary;
  std::string codec;  // bitpack | zstd
  // Sparse messages: agents send only the cells whose points span this many metres
  // (cluster.sparse.min_height_span_m), with dilation_cells of context; negative: dense.
  double sparse_min_span_m = -1;
  int sparse_dilation_cells = 2;
  std::string pace;       // realtime (scene rate) | lockstep (as fast as fusion goes)
  std::string precision;  // fp32 | int8 at start
  int agent_threads = 1;  // intra-op threads per agent process
  ServicePorts fusion;
  int fusion_deadline_ms = 0;  // fuse with whoever arrived this long after the first
  int ap_window_frames = 0;    // rolling AP window
  int fusion_threads = 1;
  // Agent k of the scene's agent list (scene order) listens on base + k.
  int agent_grpc_port_base = 0;
  int agent_metrics_port_base = 0;
  OptionalService trainer, quantizer;
  ClusterSecurity security;  // all off when the block is absent
  ClusterDataset dataset;

  // Ports of agent k (scene order): base + k, or 0 (the OS picks) where a base is 0.
  ServicePorts AgentPorts(size_t k) const;
};

// The `cluster` section of the scene file `path`; NotFound when the file has none.
absl::StatusOr<ClusterConfig> LoadClusterConfig(const std::string& path);

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_CLUSTER_CONFIG_H_
