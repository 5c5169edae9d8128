#include "services/server_host.h"

#include <signal.h>

#include <ctime>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "prometheus/gauge.h"
#include "services/control_auth.h"
#include "services/log.h"

#ifndef QV2X_VERSION
#define QV2X_VERSION "0.1.0"
#endif

namespace qv2x::services {
namespace {

// civetweb, inside prometheus-cpp's exposer, gives each connection a worker thread from
// the first byte to the end of the reply. Its defaults (2 threads, 30 s to send a request)
// let two idle sockets stall every scrape for 30 s; 16 workers and 2 s to send a whole
// request keep /metrics answering next to a dozen idle or slow-loris clients.
std::vector<std::string> ExposerOptions(const std::string& address) {
  return {"listening_ports",    address, "num_threads",       "16",
          "request_timeout_ms", "2000",  "enable_keep_alive", "no"};
}

void SetLimits(const ServerOptions& o, grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(o.max_message_bytes);
  builder.SetMaxSendMessageSize(o.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, o.max_concurrent_streams);
  grpc::ResourceQuota quota("qv2x-" + o.service_name);
  quota.SetMaxThreads(o.max_threads);
  builder.SetResourceQuota(quota);
  // A ping after 60 s of silence, the connection closed when it goes unanswered for 20 s:
  // calls of a peer that vanished without closing its socket end and free their threads.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  // Clients ping every 30 s while a call is open (ClientChannelArguments): allowed.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A connection without calls for 5 minutes is closed (clients reconnect when needed).
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 300'000);
}

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

ServerHost::ServerHost(ServerOptions options)
    : options_(std::move(options)), registry_(std::make_shared<prometheus::Registry>()) {
  SetLogName(options_.service_name);
  prometheus::BuildGauge()
      .Name("qv2x_build_info")
      .Help("Build of this qv2x service (value is always 1)")
      .Register(*registry_)
      .Add({{"service", options_.service_name}, {"version", QV2X_VERSION}})
      .Set(1);
}

ServerHost::~ServerHost() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

void ServerHost::AddService(grpc::Service* service) { services_.push_back(service); }

int ServerHost::metrics_port() const {
  if (!exposer_) return 0;
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

absl::Status ServerHost::Start() {
  if (!options_.metrics_address.empty()) {
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(ExposerOptions(options_.metrics_address));
      exposer_->RegisterCollectable(registry_);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("metrics exposer on ", options_.metrics_address, ": ", e.what()));
    }
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
      BuildServerCredentials(options_.security, options_.listen_address);
  if (!creds.ok()) return creds.status();
  if (!options_.security.token_file.empty()) {
    absl::StatusOr<std::string> token = ReadTokenFile(options_.security.token_file);
    if (!token.ok()) return token.status();
    (*creds)->SetAuthMetadataProcessor(
        std::make_shared<ControlTokenProcessor>(std::move(*token), *registry_));
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen_address, *creds, &port_);
  SetLimits(options_, builder);
  for (grpc::Service* s : services_) builder.RegisterService(s);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen_address));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  const TlsFiles& tls = options_.security.tls;
  LogInfo("serving gRPC on port ", port_,
          tls.cert.empty() ? ""
          : tls.ca.empty() ? " (TLS)"
                           : " (mutual TLS)",
          options_.security.token_file.empty() ? "" : ", control RPCs need the token",
          exposer_ ? absl::StrCat(", metrics on port ", metrics_port()) : std::string());
  return absl::OkStatus();
}

absl::Status ServerHost::StartAndAnnounce(const std::string& port_file) {
  if (absl::Status st = Start(); !st.ok()) return st;
  return WritePortFile(port_file, *this);
}

void ServerHost::RequestShutdown() { shutdown_requested_ = true; }

void ServerHost::Wait() {
  const sigset_t set = TerminationSignals();
  const timespec tick{0, 200 * 1000 * 1000};
  while (!shutdown_requested_) {
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      LogInfo("received ", sig == SIGTERM ? "SIGTERM" : "SIGINT", ", shutting down");
      shutdown_requested_ = true;
    }
  }
  if (!server_) return;
  server_->GetHealthCheckService()->SetServingStatus(false);
  for (auto& fn : on_shutdown_) fn();
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(options_.shutdown_grace));
  server_->Wait();
  server_.reset();
  LogInfo("stopped");
}

absl::Status WritePortFile(const std::string& path, const ServerHost& host) {
  if (path.empty()) return absl::OkStatus();
  return WriteFileAtomic(path, absl::StrCat(host.port(), " ", host.metrics_port(), "\n"));
}

}  // namespace qv2x::services
