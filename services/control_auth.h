// The bearer token of control RPCs. With a token configured (--auth_token_file), every RPC
// except the read-only ones below must carry "authorization: Bearer <token>"; without it, or
// with another token, it ends with UNAUTHENTICATED before the service sees it. Default
// deny: an RPC added later is a control RPC until it is listed here as read-only.
#ifndef QV2X_SERVICES_CONTROL_AUTH_H_
#define QV2X_SERVICES_CONTROL_AUTH_H_

#include <string>
#include <string_view>

#include "grpcpp/security/auth_metadata_processor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace qv2x::services {

// Open without a token: health, reflection, status and watch RPCs, job listings, and the
// agents' feature stream (which mutual TLS authenticates per agent instead).
bool IsReadOnlyMethod(std::string_view path);  // e.g. "/qv2x.v1.Fusion/GetStatus"

class ControlTokenProcessor final : public grpc::AuthMetadataProcessor {
 public:
  // Counts refusals in qv2x_rpc_unauthenticated_total{reason="missing_token"|"wrong_token"}.
  ControlTokenProcessor(std::string token, prometheus::Registry& registry);

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

 private:
  const std::string expected_;  // "Bearer <token>"
  prometheus::Family<prometheus::Counter>& refused_;
  prometheus::Counter& missing_;
  prometheus::Counter& wrong_;
};

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_CONTROL_AUTH_H_
