// Which agent a mutual-TLS client may speak for. An agent's certificate names it as
// "agent-<id>" (e.g. agent-1; agent--1 for the roadside unit with id -1) in its Common
// Name or in a DNS Subject Alternative Name; the fusion service checks the id of every
// feature stream against it, so a vehicle cannot send features as another one.
#ifndef QV2X_SERVICES_AGENT_IDENTITY_H_
#define QV2X_SERVICES_AGENT_IDENTITY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"

namespace qv2x::services {

// "agent-<id>": the name an agent's certificate carries.
std::string AgentCertificateName(int agent_id);

// The agent ids the peer's verified certificate names (empty without one).
std::vector<int> CertifiedAgentIds(const grpc::AuthContext& auth);

// OK when the peer's certificate names `agent_id`; PERMISSION_DENIED naming what the
// certificate does name otherwise (or that there is no client certificate).
absl::Status AuthorizeAgent(const grpc::ServerContextBase& ctx, int agent_id);

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_AGENT_IDENTITY_H_
