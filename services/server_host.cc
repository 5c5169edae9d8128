#include "services/server_host.h"

#include <signal.h>

#include <ctime>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/gauge.h"
#include "services/log.h"

#ifndef QV2X_VERSION
#define QV2X_VERSION "0.1.0"
#endif

namespace qv2x::services {
namespace {

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
      exposer_ = std::make_unique<prometheus::Exposer>(options_.metrics_address);
      exposer_->RegisterCollectable(registry_);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("metrics exposer on ", options_.metrics_address, ": ", e.what()));
    }
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen_address, grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  for (grpc::Service* s : services_) builder.RegisterService(s);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen_address));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  LogInfo("serving gRPC on port ", port_,
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
