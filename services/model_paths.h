// The model files a LoadModel request names (agent control, fusion), kept inside the
// service's artifacts folder: `..`, absolute paths elsewhere and symlinks that lead out
// are refused with INVALID_ARGUMENT naming the field; relative paths are taken inside it.
#ifndef QV2X_SERVICES_MODEL_PATHS_H_
#define QV2X_SERVICES_MODEL_PATHS_H_

#include <string>

#include "absl/status/statusor.h"
#include "qv2x/v1/agent.grpc.pb.h"

namespace qv2x::services {

struct ModelPaths {
  std::string checkpoint, int8_artifact;  // resolved; empty stays empty
};
absl::StatusOr<ModelPaths> ConfineModelPaths(const std::string& artifacts_dir,
                                             const std::string& checkpoint,
                                             const std::string& int8_artifact);

// qv2x.v1.AgentControl in front of the agent's own: LoadModel's paths are confined, then
// handed on resolved; every other RPC passes straight through. `inner` must outlive it.
class ConfinedAgentControl final : public v1::AgentControl::Service {
 public:
  ConfinedAgentControl(v1::AgentControl::Service* inner, std::string artifacts_dir);

  grpc::Status GetStatus(grpc::ServerContext* ctx, const v1::AgentStatusRequest* request,
                         v1::AgentStatus* response) override;
  grpc::Status SetPrecision(grpc::ServerContext* ctx, const v1::SetPrecisionRequest* request,
                            v1::ControlReply* response) override;
  grpc::Status LoadModel(grpc::ServerContext* ctx, const v1::LoadModelRequest* request,
                         v1::ControlReply* response) override;
  grpc::Status SetSparsity(grpc::ServerContext* ctx, const v1::SetSparsityRequest* request,
                           v1::ControlReply* response) override;

  // The RPCs passed through above; a unit test compares it with the service's descriptor
  // so that an RPC added to agent.proto cannot be left out (it would answer UNIMPLEMENTED).
  static constexpr int kMethods = 4;

 private:
  v1::AgentControl::Service* inner_;
  std::string artifacts_dir_;
};

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_MODEL_PATHS_H_
