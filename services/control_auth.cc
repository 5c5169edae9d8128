#include "services/control_auth.h"

#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"
#include "services/log.h"

namespace qv2x::services {
namespace {

// The quantizer has none.
constexpr std::array<std::string_view, 9> kReadOnly = {
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/qv2x.v1.Fusion/StreamFeatures",
    "/qv2x.v1.Fusion/WatchDetections",
    "/qv2x.v1.Fusion/GetStatus",
    "/qv2x.v1.AgentControl/GetStatus",
    "/qv2x.v1.Trainer/ListJobs",
    "/qv2x.v1.Trainer/GetJob",
};

// Compares without an early exit, so the time taken does not tell how much matched.
bool SameToken(std::string_view a, std::string_view b) {
  unsigned diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string_view View(const grpc::string_ref& s) { return {s.data(), s.size()}; }

}  // namespace

bool IsReadOnlyMethod(std::string_view path) {
  return std::find(kReadOnly.begin(), kReadOnly.end(), path) != kReadOnly.end();
}

ControlTokenProcessor::ControlTokenProcessor(std::string token, prometheus::Registry& registry)
    : expected_("Bearer " + token),
      refused_(prometheus::BuildCounter()
                   .Name("qv2x_rpc_unauthenticated_total")
                   .Help("Control RPCs refused for a missing or wrong bearer token")
                   .Register(registry)),
      missing_(refused_.Add({{"reason", "missing_token"}})),
      wrong_(refused_.Add({{"reason", "wrong_token"}})) {}

grpc::Status ControlTokenProcessor::Process(const InputMetadata& auth_metadata, grpc::AuthContext*,
                                            OutputMetadata* consumed, OutputMetadata*) {
  auto path = auth_metadata.find(":path");
  const std::string_view method = path == auth_metadata.end() ? "" : View(path->second);
  if (IsReadOnlyMethod(method)) return grpc::Status::OK;
  const std::string name = ClipForLog(method, 80);  // the caller's text
  auto header = auth_metadata.find("authorization");
  if (header == auth_metadata.end()) {
    missing_.Increment();
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat(name,
                                     " is a control RPC: it needs an "
                                     "\"authorization: Bearer <token>\" header"));
  }
  if (!SameToken(View(header->second), expected_)) {
    wrong_.Increment();
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat(name, ": wrong bearer token"));
  }
  // Consumed: the token is not passed on to the service.
  consumed->emplace("authorization", std::string(View(header->second)));
  return grpc::Status::OK;
}

}  // namespace qv2x::services
