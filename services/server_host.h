// Runs one gRPC server the qv2x way: TLS / mutual TLS and the control-RPC token when
// configured, deliberate limits (message size, streams per connection, threads,
// keepalive), grpc.health.v1 and reflection, a Prometheus exposer on its own port that idle
// or slow sockets cannot exhaust, qv2x_build_info, and a graceful shutdown on SIGTERM /
// SIGINT (in-flight calls get a grace period, then are cancelled).
#ifndef QV2X_SERVICES_SERVER_HOST_H_
#define QV2X_SERVICES_SERVER_HOST_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "services/tls_credentials.h"

namespace qv2x::services {

struct ServerOptions {
  std::string service_name;          // e.g. "trainer": logs and qv2x_build_info
  std::string listen_address;        // host:port for gRPC ("127.0.0.1:0" picks a port)
  std::string metrics_address;       // host:port for /metrics; empty disables
  int max_message_bytes = 16 << 20;  // both directions
  absl::Duration shutdown_grace = absl::Seconds(5);
  ServerSecurity security;  // TLS, mutual TLS, control token; empty: plaintext, open
  // Streams one connection may hold open at once (more wait on the client's side), and
  // threads the synchronous server may run calls on: past that, a new call gets
  // RESOURCE_EXHAUSTED instead of one more thread.
  int max_concurrent_streams = 100;
  int max_threads = 512;
};

class ServerHost {
 public:
  explicit ServerHost(ServerOptions options);
  ~ServerHost();

  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> shared_registry() { return registry_; }

  // Services must outlive the host. Call before Start().
  void AddService(grpc::Service* service);
  // Called once when shutdown begins (before the server drains), e.g. to cancel jobs.
  void OnShutdown(std::function<void()> fn) { on_shutdown_.push_back(std::move(fn)); }

  absl::Status Start();
  // Start(), then WritePortFile(port_file) so that a launcher that asked for port 0 can
  // find the service.
  absl::Status StartAndAnnounce(const std::string& port_file);
  int port() const { return port_; }
  int metrics_port() const;
  // Blocks until SIGTERM / SIGINT or RequestShutdown(), then shuts down gracefully.
  void Wait();
  void RequestShutdown();
  bool shutting_down() const { return shutdown_requested_.load(); }

 private:
  ServerOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::vector<grpc::Service*> services_;
  std::vector<std::function<void()>> on_shutdown_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> shutdown_requested_{false};
};

// Writes "<grpc port> <metrics port>\n" to `path` atomically (no-op for an empty path), so
// a launcher or test that asked for port 0 learns the ports.
absl::Status WritePortFile(const std::string& path, const ServerHost& host);

// Blocks SIGTERM/SIGINT in the calling thread and every thread it starts later; call first
// thing in main so that ServerHost::Wait() receives them with sigwait.
void BlockTerminationSignals();

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_SERVER_HOST_H_
