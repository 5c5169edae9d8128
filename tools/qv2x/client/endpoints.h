// Where the services of a running scene listen. `qv2x scene up` writes them to
// <run dir>/endpoints.json; the control commands (`qv2x agent`, `qv2x watch`) read them,
// or fall back to the fixed ports of a scene file's `cluster:` section.
#ifndef QV2X_TOOLS_QV2X_CLIENT_ENDPOINTS_H_
#define QV2X_TOOLS_QV2X_CLIENT_ENDPOINTS_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "core/sim/cluster_config.h"

namespace qv2x::cli {

struct Endpoint {
  std::string host = "127.0.0.1";
  int grpc_port = 0;
  int metrics_port = 0;
  std::string grpc() const;     // host:port
  std::string metrics() const;  // http://host:port/metrics
};

// PEM files and the token file a client of the scene's services uses (absolute paths);
// all empty: plaintext, no token.
struct SecurityFiles {
  std::string ca, cert, key, token_file;
  bool empty() const { return ca.empty() && cert.empty() && key.empty() && token_file.empty(); }
};

struct Endpoints {
  std::string scene;
  SecurityFiles security;
  Endpoint fusion;
  std::map<int, Endpoint> agents;          // by agent id
  std::map<std::string, Endpoint> others;  // trainer, quantizer
};

// What a client of a scene with `security` uses (deploy/tls/make-certs.sh file names:
// ca.crt, and client.crt / client.key under mutual TLS), as absolute paths.
SecurityFiles ClientSecurityFiles(const sim::ClusterSecurity& security);

absl::Status WriteEndpoints(const std::string& path, const Endpoints& e);
absl::StatusOr<Endpoints> ReadEndpoints(const std::string& path);
// The fixed ports of a scene file's cluster section (agent k in scene order: base + k).
absl::StatusOr<Endpoints> EndpointsFromScene(const std::string& scene_path);

// Resolves from --endpoints FILE, else the default run folder of --scene (when its
// endpoints.json exists), else the scene file's fixed ports.
absl::StatusOr<Endpoints> ResolveEndpoints(const std::string& endpoints_file,
                                           const std::string& scene_path);

// Default run folder of a scene: .qv2x-run/<scene name>.
std::string DefaultRunDir(const std::string& scene_name);

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_CLIENT_ENDPOINTS_H_
