// `qv2x quantize`: post-training quantization on a qv2x-quantizer through its RPC.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "grpcpp/grpcpp.h"
#include "qv2x/v1/quantizer.grpc.pb.h"
#include "services/status_convert.h"
#include "tools/qv2x/client/client_security.h"
#include "tools/qv2x/client/progress_bar.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: qv2x quantize --checkpoint CKPT --config FILE --out ARTIFACT
                     [--n-bits-w 8] [--n-bits-a 8] [--num-cali-batches 16] [--iters-w 5000]
                     [--scale-method mse|minmax] [--no-reconstruction] [--qdrop]
                     [--calibration SOURCE] [--eval SOURCE] [--eval-frames 60]
                     [--report REPORT.json] [--json FILE] [--quantizer HOST:PORT] [SECURITY]

Quantizes a stage-3 checkpoint to an INT8 artifact (SPEC §7: BN folding, calibration,
per-channel weights, AdaRound/BRECQ block reconstruction) on a qv2x-quantizer service,
following calibration and each block's reconstruction loss, then prints the report: AP
per class at IoU 0.3/0.5/0.7, model bytes, agent-encode and fused-frame latency, FP32 vs
INT8, measured in the same run.
  Paths are as the quantizer sees them: under its artifacts folder (or configs folder for
  inputs). SOURCE: sim:<scene.yaml> or a dataset folder (defaults: the config's root_dir
  for calibration, test_dir for the report).
  --report FILE   the quantizer also writes the report there (artifacts folder)
  --json FILE     this client writes the report here
  --quantizer     address (default 127.0.0.1:50060)
%s)";

absl::Status RunQuantize(Args& args) {
  v1::QuantizeRequest req;
  QV2X_ASSIGN_OR_RETURN(std::string ckpt, args.Required("checkpoint"));
  QV2X_ASSIGN_OR_RETURN(std::string config, args.Required("config"));
  QV2X_ASSIGN_OR_RETURN(std::string out, args.Required("out"));
  req.set_checkpoint(ckpt);
  req.set_config_path(config);
  req.set_output_path(out);
  QV2X_ASSIGN_OR_RETURN(int64_t w, args.IntOr("n-bits-w", 8));
  QV2X_ASSIGN_OR_RETURN(int64_t a, args.IntOr("n-bits-a", 8));
  QV2X_ASSIGN_OR_RETURN(int64_t cali, args.IntOr("num-cali-batches", 16));
  QV2X_ASSIGN_OR_RETURN(int64_t iters, args.IntOr("iters-w", 5000));
  QV2X_ASSIGN_OR_RETURN(int64_t eval_frames, args.IntOr("eval-frames", 60));
  if (w < 2 || w > 8 || a < 2 || a > 8) {
    return absl::InvalidArgumentError("--n-bits-w and --n-bits-a must be in [2, 8]");
  }
  if (cali < 1 || iters < 0 || eval_frames < 1) {
    return absl::InvalidArgumentError(
        "--num-cali-batches >= 1, --iters-w >= 0 and --eval-frames >= 1");
  }
  req.set_n_bits_w(static_cast<uint32_t>(w));
  req.set_n_bits_a(static_cast<uint32_t>(a));
  req.set_num_cali_batches(static_cast<uint32_t>(cali));
  req.set_iters_w(static_cast<int32_t>(iters));
  req.set_eval_frames(static_cast<uint32_t>(eval_frames));
  req.set_scale_method(args.GetOr("scale-method", "mse"));
  req.set_no_reconstruction(args.Switch("no-reconstruction"));
  req.set_qdrop(args.Switch("qdrop"));
  req.set_calibration_source(args.GetOr("calibration", ""));
  req.set_eval_source(args.GetOr("eval", ""));
  req.set_report_path(args.GetOr("report", ""));
  const std::string json_path = args.GetOr("json", "");
  const std::string addr = args.GetOr("quantizer", "127.0.0.1:50060");
  const SecurityFiles security = SecurityFlags(args);
  QV2X_RETURN_IF_ERROR(args.Finish());

  QV2X_ASSIGN_OR_RETURN(auto channel, Dial(addr, security));
  auto stub = v1::Quantizer::NewStub(channel);
  grpc::ClientContext ctx;
  auto reader = stub->Quantize(&ctx, req);
  ProgressBar bar;
  v1::QuantizeProgress p, done;
  while (reader->Read(&p)) {
    switch (p.phase()) {
      case v1::QuantizeProgress::PHASE_CALIBRATION:
        bar.Update(p.index(), p.total(), p.elapsed_s(), "calibration");
        break;
      case v1::QuantizeProgress::PHASE_RECONSTRUCTION:
        bar.Event(absl::StrFormat("  block %2d/%d %-28s MSE %.3g -> %.3g", p.index(), p.total(),
                                  p.block(), p.loss_before(), p.loss_after()));
        bar.Update(p.index(), p.total(), p.elapsed_s(), "reconstruction");
        break;
      case v1::QuantizeProgress::PHASE_EVALUATION:
        bar.Event(absl::StrCat("wrote ", p.artifact(), "; evaluating FP32 and INT8"));
        break;
      case v1::QuantizeProgress::PHASE_DONE:
        done = p;
        break;
      default:
        break;
    }
  }
  bar.Finish();
  grpc::Status st = reader->Finish();
  if (!st.ok()) {
    return absl::Status(services::FromGrpc(st).code(),
                        absl::StrCat("quantizer at ", addr, ": ", st.error_message()));
  }
  std::printf("%-6s %12s %10s %10s %s\n", "", "bytes", "encode p50", "frame p50",
              "AP@0.3/0.5/0.7 per class");
  for (const auto& [name, s] :
       {std::make_pair("FP32", &done.fp32()), std::make_pair("INT8", &done.int8())}) {
    std::string ap;
    for (const auto& c : s->ap()) {
      absl::StrAppendFormat(&ap, "%s %.3f/%.3f/%.3f  ", c.class_name(), c.ap_30(), c.ap_50(),
                            c.ap_70());
    }
    std::printf("%-6s %12lld %8.1fms %8.1fms %s\n", name, static_cast<long long>(s->bytes()),
                1e3 * s->encode_latency_p50_s(), 1e3 * s->e2e_latency_p50_s(), ap.c_str());
  }
  if (done.fp32().bytes() > 0) {
    std::printf("INT8 model: %.1f %% of the FP32 bytes; encode %.2fx faster\n",
                100.0 * done.int8().bytes() / done.fp32().bytes(),
                done.int8().encode_latency_p50_s() > 0
                    ? done.fp32().encode_latency_p50_s() / done.int8().encode_latency_p50_s()
                    : 0.0);
  }
  std::printf("artifact: %s\n", done.artifact().c_str());
  if (!json_path.empty()) QV2X_RETURN_IF_ERROR(WriteFileAtomic(json_path, done.report_json()));
  return absl::OkStatus();
}

const Registration kQuantize({"quantize", "post-training quantization on qv2x-quantizer (RPC)",
                              WithSecurity(kUsage), RunQuantize});

}  // namespace
}  // namespace qv2x::cli
