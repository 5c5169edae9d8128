#include "core/quant/ptq_options.h"

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/config/yaml_reader.h"

namespace qv2x::quant {
namespace {

absl::Status Invalid(const char* field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("PTQ option ", field, ": ", what));
}

}  // namespace

absl::Status ValidatePtqOptions(const PtqOptions& o) {
  if (o.n_bits_w < 2 || o.n_bits_w > 8) return Invalid("n_bits_w", "expected 2..8");
  if (o.n_bits_a < 2 || o.n_bits_a > 8) return Invalid("n_bits_a", "expected 2..8");
  if (o.num_cali_batches < 1) return Invalid("num_cali_batches", "expected at least 1");
  if (o.iters_w < 0) return Invalid("iters_w", "expected >= 0");
  if (o.qdrop_prob < 0 || o.qdrop_prob > 1) return Invalid("qdrop_prob", "expected 0..1");
  if (o.round_weight < 0) return Invalid("round_weight", "expected >= 0");
  if (o.b_start < o.b_end || o.b_end <= 0)
    return Invalid("b_start/b_end", "need b_start >= b_end > 0");
  if (o.warmup < 0 || o.warmup >= 1) return Invalid("warmup", "expected [0, 1)");
  if (o.threads < 0) return Invalid("threads", "expected >= 0");
  if (o.recon_batch < 1 || o.recon_crop < 1 || o.recon_samples < 1) {
    return Invalid("recon_batch/recon_crop/recon_samples", "expected >= 1");
  }
  if (o.recon_lr <= 0) return Invalid("recon_lr", "expected > 0");
  return absl::OkStatus();
}

absl::StatusOr<PtqOptions> LoadPtqOptions(const std::string& yaml_path) {
  QV2X_ASSIGN_OR_RETURN(YamlReader r, YamlReader::FromFile(yaml_path));
  PtqOptions o;
  auto int_key = [&](const char* key, int* v) -> absl::Status {
    QV2X_ASSIGN_OR_RETURN(int64_t x, r.IntOr(key, *v));
    *v = static_cast<int>(x);
    return absl::OkStatus();
  };
  auto double_key = [&](const char* key, double* v) -> absl::Status {
    QV2X_ASSIGN_OR_RETURN(*v, r.DoubleOr(key, *v));
    return absl::OkStatus();
  };
  QV2X_RETURN_IF_ERROR(int_key("n_bits_w", &o.n_bits_w));
  QV2X_RETURN_IF_ERROR(int_key("n_bits_a", &o.n_bits_a));
  QV2X_RETURN_IF_ERROR(int_key("num_cali_batches", &o.num_cali_batches));
  QV2X_RETURN_IF_ERROR(int_key("iters_w", &o.iters_w));
  QV2X_ASSIGN_OR_RETURN(std::string method,
                        r.StringOr("scale_method", ScaleMethodName(o.scale_method)));
  if (method != "mse" && method != "minmax") {
    return r.Error("scale_method", absl::StrCat("expected mse or minmax, got \"", method, "\""));
  }
  o.scale_method = method == "mse" ? ScaleMethod::kMse : ScaleMethod::kMinMax;
  QV2X_ASSIGN_OR_RETURN(o.reconstruct, r.BoolOr("reconstruct", o.reconstruct));
  QV2X_ASSIGN_OR_RETURN(o.qdrop, r.BoolOr("qdrop", o.qdrop));
  QV2X_RETURN_IF_ERROR(double_key("qdrop_prob", &o.qdrop_prob));
  QV2X_RETURN_IF_ERROR(double_key("round_weight", &o.round_weight));
  QV2X_RETURN_IF_ERROR(double_key("b_start", &o.b_start));
  QV2X_RETURN_IF_ERROR(double_key("b_end", &o.b_end));
  QV2X_RETURN_IF_ERROR(double_key("warmup", &o.warmup));
  QV2X_RETURN_IF_ERROR(int_key("threads", &o.threads));
  QV2X_ASSIGN_OR_RETURN(int64_t seed, r.IntOr("seed", 0));
  o.seed = static_cast<uint64_t>(seed);
  QV2X_RETURN_IF_ERROR(int_key("recon_batch", &o.recon_batch));
  QV2X_RETURN_IF_ERROR(int_key("recon_crop", &o.recon_crop));
  QV2X_RETURN_IF_ERROR(int_key("recon_samples", &o.recon_samples));
  QV2X_RETURN_IF_ERROR(double_key("recon_lr", &o.recon_lr));
  QV2X_RETURN_IF_ERROR(r.Finish());
  QV2X_RETURN_IF_ERROR(ValidatePtqOptions(o));
  return o;
}

const char* ScaleMethodName(ScaleMethod m) { return m == ScaleMethod::kMse ? "mse" : "minmax"; }

nlohmann::json PtqOptionsJson(const PtqOptions& o) {
  return {{"n_bits_w", o.n_bits_w},
          {"n_bits_a", o.n_bits_a},
          {"num_cali_batches", o.num_cali_batches},
          {"iters_w", o.iters_w},
          {"scale_method", ScaleMethodName(o.scale_method)},
          {"reconstruct", o.reconstruct},
          {"qdrop", o.qdrop},
          {"qdrop_prob", o.qdrop_prob},
          {"round_weight", o.round_weight},
          {"b_start", o.b_start},
          {"b_end", o.b_end},
          {"warmup", o.warmup},
          {"threads", o.threads},
          {"seed", o.seed},
          {"recon_batch", o.recon_batch},
          {"recon_crop", o.recon_crop},
          {"recon_samples", o.recon_samples},
          {"recon_lr", o.recon_lr}};
}

}  // namespace qv2x::quant
