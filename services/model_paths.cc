#include "services/model_paths.h"

#include "services/confined_paths.h"
#include "services/status_convert.h"

namespace qv2x::services {

absl::StatusOr<ModelPaths> ConfineModelPaths(const std::string& artifacts_dir,
                                             const std::string& checkpoint,
                                             const std::string& int8_artifact) {
  ModelPaths p;
  if (!checkpoint.empty()) {
    absl::StatusOr<std::string> c = ConfinePath(artifacts_dir, checkpoint, "checkpoint");
    if (!c.ok()) return c.status();
    p.checkpoint = *c;
  }
  if (!int8_artifact.empty()) {
    absl::StatusOr<std::string> a = ConfinePath(artifacts_dir, int8_artifact, "int8_artifact");
    if (!a.ok()) return a.status();
    p.int8_artifact = *a;
  }
  return p;
}

ConfinedAgentControl::ConfinedAgentControl(v1::AgentControl::Service* inner,
                                           std::string artifacts_dir)
    : inner_(inner), artifacts_dir_(std::move(artifacts_dir)) {}

grpc::Status ConfinedAgentControl::GetStatus(grpc::ServerContext* ctx,
                                             const v1::AgentStatusRequest* request,
                                             v1::AgentStatus* response) {
  return inner_->GetStatus(ctx, request, response);
}

grpc::Status ConfinedAgentControl::SetPrecision(grpc::ServerContext* ctx,
                                                const v1::SetPrecisionRequest* request,
                                                v1::ControlReply* response) {
  return inner_->SetPrecision(ctx, request, response);
}

grpc::Status ConfinedAgentControl::SetSparsity(grpc::ServerContext* ctx,
                                               const v1::SetSparsityRequest* request,
                                               v1::ControlReply* response) {
  return inner_->SetSparsity(ctx, request, response);
}

grpc::Status ConfinedAgentControl::LoadModel(grpc::ServerContext* ctx,
                                             const v1::LoadModelRequest* request,
                                             v1::ControlReply* response) {
  absl::StatusOr<ModelPaths> paths =
      ConfineModelPaths(artifacts_dir_, request->checkpoint(), request->int8_artifact());
  if (!paths.ok()) return ToGrpc(paths.status());
  v1::LoadModelRequest confined = *request;
  confined.set_checkpoint(paths->checkpoint);
  confined.set_int8_artifact(paths->int8_artifact);
  return inner_->LoadModel(ctx, &confined, response);
}

}  // namespace qv2x::services
