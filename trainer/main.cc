// qv2x-trainer: the training service (qv2x.v1.Trainer).
#include <filesystem>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "services/log.h"
#include "services/security_flags.h"
#include "services/server_host.h"
#include "trainer/trainer_service.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50070", "gRPC address (host:port)");
ABSL_FLAG(std::string, metrics, "127.0.0.1:9470", "Prometheus /metrics address; empty disables");
ABSL_FLAG(std::string, artifacts, "artifacts", "folder for checkpoints; paths outside are refused");
ABSL_FLAG(std::string, configs, "configs", "read-only folder of stage YAMLs");
ABSL_FLAG(int, threads, 0, "intra-op threads for training (0 = default)");
ABSL_FLAG(int, max_message_bytes, 4 << 20, "largest gRPC message accepted");
ABSL_FLAG(std::string, port_file, "",
          "write \"<grpc port> <metrics port>\" here once serving (for port 0 in tests)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("qv2x-trainer --artifacts DIR [--listen host:port]");
  absl::ParseCommandLine(argc, argv);
  qv2x::services::BlockTerminationSignals();
  std::error_code ec;
  std::filesystem::create_directories(absl::GetFlag(FLAGS_artifacts), ec);
  qv2x::services::ServerOptions options;
  options.service_name = "trainer";
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.metrics_address = absl::GetFlag(FLAGS_metrics);
  options.security = qv2x::services::ServerSecurityFromFlags();
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  qv2x::services::ServerHost host(options);
  qv2x::trainer::TrainerService service(
      {absl::GetFlag(FLAGS_artifacts), absl::GetFlag(FLAGS_configs), absl::GetFlag(FLAGS_threads)},
      host.registry());
  host.AddService(&service);
  host.OnShutdown([&] { service.CancelAll(); });
  if (absl::Status st = host.StartAndAnnounce(absl::GetFlag(FLAGS_port_file)); !st.ok()) {
    qv2x::services::LogError(st.message());
    return 1;
  }
  host.Wait();
  return 0;
}
