#include "quantizer/quantizer_service.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/config/model_config.h"
#include "core/data/frame.h"
#include "core/quant/ptq.h"
#include "core/quant/ptq_report.h"
#include "services/confined_paths.h"
#include "services/eval_proto.h"
#include "services/log.h"
#include "services/status_convert.h"

namespace qv2x::quantizer {
namespace {

grpc::Status Invalid(const std::string& what) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, what);
}

void FillSummary(const quant::PrecisionReport& r, v1::PrecisionSummary* out) {
  out->set_bytes(r.bytes);
  out->set_file_bytes(r.file_bytes);
  out->set_encode_latency_p50_s(r.encode_latency_p50_s);
  out->set_e2e_latency_p50_s(r.e2e_latency_p50_s);
  for (v1::ClassAp& a : services::ClassAps(r.ap)) *out->add_ap() = std::move(a);
}

}  // namespace

QuantizerService::QuantizerService(QuantizerOptions options, prometheus::Registry& registry)
    : options_(std::move(options)),
      running_gauge_(prometheus::BuildGauge()
                         .Name("qv2x_quantizer_running")
                         .Help("1 while a quantization job runs")
                         .Register(registry)
                         .Add({})),
      jobs_(prometheus::BuildCounter()
                .Name("qv2x_quantizer_jobs_total")
                .Help("Finished quantization jobs by final state")
                .Register(registry)),
      block_loss_(prometheus::BuildGauge()
                      .Name("qv2x_quantizer_block_loss")
                      .Help("Block output MSE against FP32 of the last job, by rounding")
                      .Register(registry)),
      model_bytes_(prometheus::BuildGauge()
                       .Name("qv2x_quantizer_model_bytes")
                       .Help("Model tensor bytes of the last job, by precision")
                       .Register(registry)),
      ap_(prometheus::BuildGauge()
              .Name("qv2x_quantizer_ap")
              .Help("Held-out AP of the last job, by precision, class and IoU")
              .Register(registry)),
      latency_(prometheus::BuildGauge()
                   .Name("qv2x_quantizer_latency_seconds")
                   .Help("Median latencies of the last job's report, by precision and what")
                   .Register(registry)) {
  for (const char* s : {"done", "failed", "cancelled"}) jobs_.Add({{"state", s}});
}

absl::StatusOr<std::string> QuantizerService::ResolveSource(const std::string& source,
                                                            const std::string& field) {
  if (absl::StartsWith(source, "sim:")) {
    auto scene = services::ResolveInput(options_.artifacts_dir, options_.configs_dir,
                                        source.substr(4), field);
    if (!scene.ok()) return scene.status();
    return "sim:" + *scene;
  }
  return services::ResolveInput(options_.artifacts_dir, options_.configs_dir, source, field);
}

grpc::Status QuantizerService::Quantize(grpc::ServerContext* ctx,
                                        const v1::QuantizeRequest* request,
                                        grpc::ServerWriter<v1::QuantizeProgress>* writer) {
  std::string id;
  std::shared_ptr<std::atomic<bool>> cancel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          absl::StrCat("job ", *running_, " is running; one job at a time"));
    }
    id = absl::StrCat("quant-", next_id_++);
    running_ = id;
    cancel_ = cancel = std::make_shared<std::atomic<bool>>(false);
  }
  running_gauge_.Set(1);
  grpc::Status st;
  try {
    st = Run(ctx, request, writer, id, cancel.get());
  } catch (const std::exception& e) {
    st = grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat("quantizer error: ", e.what()));
  }
  running_gauge_.Set(0);
  const char* state = st.ok()                                          ? "done"
                      : st.error_code() == grpc::StatusCode::CANCELLED ? "cancelled"
                                                                       : "failed";
  jobs_.Add({{"state", state}}).Increment();
  services::LogInfo(id, ": ", state, st.ok() ? "" : absl::StrCat(": ", st.error_message()));
  std::lock_guard<std::mutex> lock(mu_);
  running_.reset();
  cancel_.reset();
  return st;
}

grpc::Status QuantizerService::Run(grpc::ServerContext* ctx, const v1::QuantizeRequest* req,
                                   grpc::ServerWriter<v1::QuantizeProgress>* writer,
                                   const std::string& id, std::atomic<bool>* cancel) {
  quant::PtqOptions o;
  o.n_bits_w = req->n_bits_w() == 0 ? 8 : static_cast<int>(req->n_bits_w());
  o.n_bits_a = req->n_bits_a() == 0 ? 8 : static_cast<int>(req->n_bits_a());
  o.num_cali_batches =
      req->num_cali_batches() == 0 ? 16 : static_cast<int>(req->num_cali_batches());
  o.iters_w = req->iters_w() < 0 ? 5000 : req->iters_w();
  if (req->scale_method().empty() || req->scale_method() == "mse") {
    o.scale_method = quant::ScaleMethod::kMse;
  } else if (req->scale_method() == "minmax") {
    o.scale_method = quant::ScaleMethod::kMinMax;
  } else {
    return Invalid(
        absl::StrCat("scale_method: expected minmax or mse, got \"", req->scale_method(), "\""));
  }
  o.reconstruct = !req->no_reconstruction() && o.iters_w > 0;
  o.qdrop = req->qdrop();
  o.threads = options_.threads;
  if (absl::Status v = quant::ValidatePtqOptions(o); !v.ok()) return services::ToGrpc(v);

  auto config = services::ResolveInput(options_.artifacts_dir, options_.configs_dir,
                                       req->config_path(), "config_path");
  if (!config.ok()) return services::ToGrpc(config.status());
  auto checkpoint = services::ResolveInput(options_.artifacts_dir, options_.configs_dir,
                                           req->checkpoint(), "checkpoint");
  if (!checkpoint.ok()) return services::ToGrpc(checkpoint.status());
  auto output = services::ConfinePath(options_.artifacts_dir, req->output_path(), "output_path");
  if (!output.ok()) return services::ToGrpc(output.status());
  std::string report_path;
  if (!req->report_path().empty()) {
    auto r = services::ConfinePath(options_.artifacts_dir, req->report_path(), "report_path");
    if (!r.ok()) return services::ToGrpc(r.status());
    report_path = *r;
  }
  auto cfg = LoadStageConfig(*config);
  if (!cfg.ok()) return services::ToGrpc(cfg.status());
  auto cali =
      ResolveSource(req->calibration_source().empty() ? cfg->root_dir : req->calibration_source(),
                    "calibration_source");
  if (!cali.ok()) return services::ToGrpc(cali.status());
  auto eval =
      ResolveSource(req->eval_source().empty() ? cfg->test_dir : req->eval_source(), "eval_source");
  if (!eval.ok()) return services::ToGrpc(eval.status());

  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  bool client_gone = false;
  auto send = [&](v1::QuantizeProgress& p) {
    p.set_job_id(id);
    p.set_elapsed_s(elapsed());
    if (!client_gone && (ctx->IsCancelled() || !writer->Write(p))) client_gone = true;
  };
  services::LogInfo(id, ": W", o.n_bits_w, "A", o.n_bits_a, " ", *checkpoint, " -> ", *output);
  auto on_progress = [&](const quant::PtqProgress& p) {
    v1::QuantizeProgress msg;
    msg.set_index(p.index + 1);
    msg.set_total(p.total);
    if (p.kind == quant::PtqProgress::kCalibration) {
      msg.set_phase(v1::QuantizeProgress::PHASE_CALIBRATION);
    } else if (p.kind == quant::PtqProgress::kReconstruction) {
      msg.set_phase(v1::QuantizeProgress::PHASE_RECONSTRUCTION);
      msg.set_block(p.block);
      msg.set_loss_before(p.loss_before);
      msg.set_loss_after(p.loss_after);
      block_loss_.Add({{"block", p.block}, {"rounding", "nearest"}}).Set(p.loss_before);
      block_loss_.Add({{"block", p.block}, {"rounding", "learned"}}).Set(p.loss_after);
    } else {
      return;
    }
    send(msg);
  };
  // The artifact is written and evaluated under a temporary name next to the output, and
  // renamed into place only once the job succeeded: a cancelled, failed or killed job
  // leaves the previous artifact as it was. A killed job's leftovers go with the next one.
  RemoveStaleTempFiles(std::filesystem::path(*output).parent_path().string());
  const std::string staged = absl::StrCat(*output, kTempInfix, ::getpid());
  struct Unstage {
    const std::string& path;
    ~Unstage() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  } unstage{staged};
  auto result =
      quant::QuantizeCheckpoint(*config, *checkpoint, *cali, o, staged, on_progress, cancel);
  if (!result.ok()) return services::ToGrpc(result.status());
  {
    v1::QuantizeProgress msg;
    msg.set_phase(v1::QuantizeProgress::PHASE_EVALUATION);
    msg.set_artifact(*output);
    send(msg);
  }
  quant::CompareOptions co;
  co.max_frames = req->eval_frames() == 0 ? 60 : static_cast<int>(req->eval_frames());
  auto report = quant::CompareFp32Int8(*config, *checkpoint, staged, *eval, co);
  if (!report.ok()) return services::ToGrpc(report.status());
  if (cancel->load()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  std::error_code renamed;
  std::filesystem::rename(staged, *output, renamed);
  if (renamed) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat(*output, ": rename failed: ", renamed.message()));
  }
  const std::string json = quant::PtqReportJson(*report).dump(2) + "\n";
  if (!report_path.empty()) {
    if (absl::Status w = WriteFileAtomic(report_path, json); !w.ok()) return services::ToGrpc(w);
  }
  for (const auto& [name, r] : {std::make_pair(std::string("fp32"), &report->fp32),
                                std::make_pair(std::string("int8"), &report->int8)}) {
    model_bytes_.Add({{"precision", name}}).Set(static_cast<double>(r->bytes));
    latency_.Add({{"precision", name}, {"what", "encode_p50"}}).Set(r->encode_latency_p50_s);
    latency_.Add({{"precision", name}, {"what", "e2e_p50"}}).Set(r->e2e_latency_p50_s);
    static const char* kIou[] = {"0.3", "0.5", "0.7"};
    for (int c = 0; c < kNumClasses; ++c) {
      for (int t = 0; t < 3; ++t) {
        ap_.Add({{"precision", name},
                 {"class", ClassName(static_cast<ObjectClass>(c))},
                 {"iou", kIou[t]}})
            .Set(r->ap.ap[c][t]);
      }
    }
  }
  v1::QuantizeProgress done;
  done.set_phase(v1::QuantizeProgress::PHASE_DONE);
  done.set_artifact(*output);
  FillSummary(report->fp32, done.mutable_fp32());
  FillSummary(report->int8, done.mutable_int8());
  done.set_report_json(json);
  send(done);
  return grpc::Status::OK;
}

grpc::Status QuantizerService::CancelQuantize(grpc::ServerContext*,
                                              const v1::CancelQuantizeRequest* request,
                                              v1::CancelQuantizeResponse* response) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!running_ || (!request->job_id().empty() && request->job_id() != *running_)) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        request->job_id().empty()
                            ? "no job is running"
                            : absl::StrCat("no running job ", request->job_id()));
  }
  cancel_->store(true);
  response->set_job_id(*running_);
  return grpc::Status::OK;
}

void QuantizerService::CancelAll() {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancel_) cancel_->store(true);
}

}  // namespace qv2x::quantizer
