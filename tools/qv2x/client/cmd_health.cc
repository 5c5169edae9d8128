// `qv2x health HOST:PORT`: exit 0 only when the server reports SERVING (a container
// health probe).
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "tools/qv2x/client/client_security.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: qv2x health HOST:PORT [--service NAME] [--timeout SECONDS] [SECURITY]

Asks a qv2x server (any gRPC server implementing grpc.health.v1) whether it is serving.
Prints SERVING / NOT_SERVING / ... and exits 0 only for SERVING.
%s)";

absl::Status RunHealth(Args& args) {
  if (args.positional().size() != 1) return absl::InvalidArgumentError("expected one HOST:PORT");
  const std::string addr = args.positional()[0];
  const std::string service = args.GetOr("service", "");
  auto timeout = args.DoubleOr("timeout", 3.0);
  if (!timeout.ok()) return timeout.status();
  const SecurityFiles security = SecurityFlags(args);
  if (absl::Status st = args.Finish(); !st.ok()) return st;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Dial(addr, security);
  if (!channel.ok()) return channel.status();
  auto stub = grpc::health::v1::Health::NewStub(*channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(*timeout * 1000)));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st = stub->Check(&ctx, req, &resp);
  if (!st.ok()) {
    return absl::UnavailableError(absl::StrCat(addr, ": ", st.error_message()));
  }
  const std::string name = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status());
  std::printf("%s\n", name.c_str());
  if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat(addr, " is ", name));
  }
  return absl::OkStatus();
}

const Registration kHealth({"health", "exit 0 when a server is SERVING (health probe)",
                            WithSecurity(kUsage), RunHealth});

}  // namespace
}  // namespace qv2x::cli
