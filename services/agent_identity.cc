#include "services/agent_identity.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace qv2x::services {
namespace {

constexpr char kPrefix[] = "agent-";

}  // namespace

std::string AgentCertificateName(int agent_id) { return absl::StrCat(kPrefix, agent_id); }

std::vector<int> CertifiedAgentIds(const grpc::AuthContext& auth) {
  std::vector<int> ids;
  if (!auth.IsPeerAuthenticated()) return ids;
  for (const char* property : {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME}) {
    for (const grpc::string_ref& name : auth.FindPropertyValues(property)) {
      const absl::string_view n(name.data(), name.size());
      int id = 0;
      if (absl::StartsWith(n, kPrefix) && absl::SimpleAtoi(n.substr(sizeof(kPrefix) - 1), &id) &&
          std::find(ids.begin(), ids.end(), id) == ids.end()) {
        ids.push_back(id);
      }
    }
  }
  return ids;
}

absl::Status AuthorizeAgent(const grpc::ServerContextBase& ctx, int agent_id) {
  const std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return absl::PermissionDeniedError(
        absl::StrCat("agent ", agent_id,
                     ": no verified client certificate (the fusion service runs mutual "
                     "TLS; an agent presents a certificate named ",
                     AgentCertificateName(agent_id), ")"));
  }
  const std::vector<int> ids = CertifiedAgentIds(*auth);
  if (std::find(ids.begin(), ids.end(), agent_id) != ids.end()) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "agent ", agent_id, ": the client certificate does not name ", AgentCertificateName(agent_id),
      ids.empty() ? std::string(" (it names no agent)")
                  : absl::StrCat(" (it names agent ", absl::StrJoin(ids, ", "), ")")));
}

}  // namespace qv2x::services
