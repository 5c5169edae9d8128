#include "trainer/trainer_service.h"

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/training/stage_runner.h"
#include "services/confined_paths.h"
#include "services/log.h"
#include "services/status_convert.h"

namespace qv2x::trainer {
TrainerService::TrainerService(TrainerOptions options, prometheus::Registry& registry)
    : options_(std::move(options)),
      stage_(prometheus::BuildGauge()
                 .Name("qv2x_trainer_stage")
                 .Help("Stage of the running job (0 when idle)")
                 .Register(registry)
                 .Add({})),
      lr_(prometheus::BuildGauge()
              .Name("qv2x_trainer_learning_rate")
              .Help("Current learning rate")
              .Register(registry)
              .Add({})),
      steps_(prometheus::BuildCounter()
                 .Name("qv2x_trainer_step_total")
                 .Help("Optimiser steps taken")
                 .Register(registry)
                 .Add({})),
      loss_(prometheus::BuildGauge()
                .Name("qv2x_trainer_loss")
                .Help("Latest training loss by term")
                .Register(registry)),
      jobs_total_(prometheus::BuildCounter()
                      .Name("qv2x_trainer_jobs_total")
                      .Help("Finished jobs by final state")
                      .Register(registry)),
      step_seconds_(prometheus::BuildHistogram()
                        .Name("qv2x_trainer_step_duration_seconds")
                        .Help("Wall time per optimiser step")
                        .Register(registry)
                        .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.03, 0.1, 0.3, 1, 3,
                                                                         10, 30})) {}

namespace {

v1::TrainProgress ToProto(const std::string& job_id, const StageProgress& p) {
  v1::TrainProgress out;
  out.set_job_id(job_id);
  out.set_stage(p.stage);
  out.set_epoch(p.epoch);
  out.set_epochs_total(p.epochs_total);
  out.set_step(p.step);
  out.set_steps_total(p.steps_total);
  for (const auto& [name, v] : p.losses) {
    auto* t = out.add_losses();
    t->set_name(name);
    t->set_value(v);
  }
  out.set_lr(p.lr);
  out.set_elapsed_s(p.elapsed_s);
  for (const auto& [cls, ap] : p.validation_ap) {
    auto* a = out.add_validation_ap();
    a->set_class_name(cls);
    a->set_ap_30(ap[0]);
    a->set_ap_50(ap[1]);
    a->set_ap_70(ap[2]);
  }
  out.set_checkpoint(p.checkpoint);
  out.set_message(p.message);
  return out;
}

}  // namespace

absl::StatusOr<std::string> TrainerService::ResolveConfig(const std::string& path) const {
  return services::ResolveInput(options_.artifacts_dir, options_.configs_dir, path, "config_path");
}

grpc::Status TrainerService::RunStage(grpc::ServerContext* ctx, const v1::RunStageRequest* req,
                                      grpc::ServerWriter<v1::TrainProgress>* writer) {
  try {
    return RunStageImpl(ctx, req, writer);
  } catch (const std::exception& e) {
    services::LogError("RunStage: unexpected exception: ", e.what());
    return grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat("trainer error: ", e.what()));
  }
}

grpc::Status TrainerService::RunStageImpl(grpc::ServerContext* ctx, const v1::RunStageRequest* req,
                                          grpc::ServerWriter<v1::TrainProgress>* writer) {
  if (req->stage() < 1 || req->stage() > 3) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("stage: must be 1, 2 or 3, got ", req->stage()));
  }
  StageRequest sr;
  sr.stage = req->stage();
  sr.overrides.assign(req->overrides().begin(), req->overrides().end());
  sr.resume = req->resume();
  sr.threads = options_.threads;
  auto config = ResolveConfig(req->config_path());
  if (!config.ok()) return services::ToGrpc(config.status());
  sr.config_path = *config;
  const std::string out_rel =
      req->output_dir().empty() ? absl::StrCat("stage", req->stage()) : req->output_dir();
  auto out = services::ConfinePath(options_.artifacts_dir, out_rel, "output_dir");
  if (!out.ok()) return services::ToGrpc(out.status());
  sr.output_dir = *out;
  if (!req->from_checkpoint().empty()) {
    auto from =
        services::ConfinePath(options_.artifacts_dir, req->from_checkpoint(), "from_checkpoint");
    if (!from.ok()) return services::ToGrpc(from.status());
    sr.from_checkpoint = *from;
  }
  if (absl::Status st = CheckStageRequest(sr); !st.ok()) return services::ToGrpc(st);

  auto handle = jobs_.Begin(sr.stage, sr.output_dir);
  if (!handle.ok()) return services::ToGrpc(handle.status());
  const std::string id = handle->id;
  services::LogInfo(id, ": stage ", sr.stage, " from ", sr.config_path, " -> ", sr.output_dir);
  stage_.Set(sr.stage);
  auto last_step = std::chrono::steady_clock::now();
  int64_t last_step_count = 0;
  bool client_gone = false;
  auto on_progress = [&](const StageProgress& p) {
    v1::TrainProgress msg = ToProto(id, p);
    jobs_.Update(id, msg);
    if (p.step > last_step_count) {
      const auto now = std::chrono::steady_clock::now();
      const double dt = std::chrono::duration<double>(now - last_step).count();
      step_seconds_.Observe(dt / static_cast<double>(p.step - last_step_count));
      steps_.Increment(static_cast<double>(p.step - last_step_count));
      last_step = now;
      last_step_count = p.step;
    }
    lr_.Set(p.lr);
    for (const auto& [term, v] : p.losses) loss_.Add({{"term", term}}).Set(v);
    // A client that went away does not stop the job; CancelJob does.
    if (!client_gone && (ctx->IsCancelled() || !writer->Write(msg))) client_gone = true;
  };
  auto result = qv2x::RunStage(sr, on_progress, handle->cancel.get());
  stage_.Set(0);
  if (!result.ok()) {
    jobs_.End(id, "failed", std::string(result.status().message()), "");
    jobs_total_.Add({{"state", "failed"}}).Increment();
    services::LogWarning(id, ": failed: ", result.status().message());
    return services::ToGrpc(result.status());
  }
  const std::string state = result->cancelled ? "cancelled" : "done";
  jobs_.End(id, state, "", result->last_checkpoint);
  jobs_total_.Add({{"state", state}}).Increment();
  v1::TrainProgress done;
  done.set_job_id(id);
  done.set_stage(sr.stage);
  done.set_epoch(result->epochs_done);
  done.set_checkpoint(result->best_checkpoint);
  done.set_elapsed_s(result->wall_s);
  for (const auto& [name, v] : result->final_losses) {
    auto* t = done.add_losses();
    t->set_name(name);
    t->set_value(v);
  }
  done.set_message(
      absl::StrCat(state, ": last ", result->last_checkpoint, ", best ", result->best_checkpoint));
  done.set_done(true);
  if (!client_gone) writer->Write(done);
  services::LogInfo(id, ": ", done.message());
  if (result->cancelled) return grpc::Status(grpc::StatusCode::CANCELLED, done.message());
  return grpc::Status::OK;
}

grpc::Status TrainerService::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*,
                                      v1::ListJobsResponse* response) {
  for (auto& job : jobs_.List()) *response->add_jobs() = std::move(job);
  return grpc::Status::OK;
}

grpc::Status TrainerService::GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                                    v1::Job* response) {
  auto job = jobs_.Get(request->job_id());
  if (!job.ok()) return services::ToGrpc(job.status());
  *response = *std::move(job);
  return grpc::Status::OK;
}

grpc::Status TrainerService::CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* request,
                                       v1::Job* response) {
  auto job = jobs_.Cancel(request->job_id());
  if (!job.ok()) return services::ToGrpc(job.status());
  *response = *std::move(job);
  return grpc::Status::OK;
}

}  // namespace qv2x::trainer
