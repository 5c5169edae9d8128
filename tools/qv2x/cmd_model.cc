// `qv2x model summary|init|import|export`: parameter counts and compute cost of a stage
// config's model, a freshly initialised checkpoint, QuantV2X's checkpoints in and out;
// `inputs` and `forward` live in cmd_model_forward.cc. Torch-free: everything goes through
// core/model/model_summary.h and core/model/quantv2x_interop.h.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "core/config/model_config.h"
#include "core/model/model_summary.h"
#include "core/model/quantv2x_interop.h"
#include "nlohmann/json.hpp"
#include "tools/qv2x/cmd_model_forward.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: qv2x model summary --config FILE [--set key.path=value ...] [--json]
       qv2x model init --config FILE --out CKPT [--seed N] [--set key.path=value ...]
       qv2x model import --config FILE --from-quantv2x STATE_DICT --out CKPT
       qv2x model export --config FILE --checkpoint CKPT --to-quantv2x STATE_DICT

summary  Builds the model of a stage YAML and prints, per top-level module (QuantV2X
         names: encoder_m1, backbone_m1, codebook, pyramid_backbone, shrink_conv,
         cls_head, reg_head, dir_head), its parameter count and FP32 bytes, the total, the
         pillar and feature grids, and the multiply-adds counted from the conv shapes.
         --json prints {"model", "parameters", "fp32_bytes", "modules": [{"name",
         "parameters", "buffers", "fp32_bytes"}], "grid", "multiply_adds"}.
init     Writes a freshly initialised checkpoint (a PyTorch state_dict file that
         torch.load reads; docs/checkpoint-format.md) with the config text, stage 0,
         epoch 0 and the codebook digest as metadata.
import   Reads a state_dict QuantV2X wrote (torch.save(model.state_dict()); `module.`
         prefixes are stripped) and writes it as a qv2x checkpoint of the config, every
         tensor accounted for: anything missing, left over or mis-shaped is an error
         naming it. configs/quantv2x/ has QuantV2X's model layout (the umgm codebook, the
         18-channel cls head; docs/checkpoint-format.md).
export   Writes a qv2x checkpoint as the plain state_dict QuantV2X's code loads.

flags:
  --config FILE         stage YAML (configs/<preset>/stage{1,2,3}.yaml)
  --set key.path=value  override a config key (repeatable), as in `qv2x config check`
  --json                summary as JSON
  --out CKPT            init: checkpoint path (parent folders are created)
  --seed N              init: torch seed (default: the config's train_params.seed)
  --from-quantv2x FILE  import: QuantV2X's state_dict file
  --checkpoint CKPT     export: the qv2x checkpoint
  --to-quantv2x FILE    export: where to write the state_dict)";

std::string Grouped(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

double Giga(int64_t v) { return static_cast<double>(v) * 1e-9; }

absl::StatusOr<StageConfig> Config(Args& args) {
  QV2X_ASSIGN_OR_RETURN(std::string path, args.Required("config"));
  return LoadStageConfig(path, args.All("set"));
}

absl::Status RunSummary(Args& args) {
  const bool json = args.Switch("json");
  QV2X_ASSIGN_OR_RETURN(StageConfig cfg, Config(args));
  QV2X_RETURN_IF_ERROR(args.Finish());
  QV2X_ASSIGN_OR_RETURN(ModelSummary s, SummarizeModel(cfg));
  // Encoder cost at the test-time pillar cap: an upper bound for one sweep.
  const int64_t pillars = cfg.preprocess.max_voxel_test;
  const int64_t encode = s.cost.EncodeMacs(pillars);
  const int64_t per_frame =
      s.cost.decoders_per_frame + s.cost.shrink_per_frame + s.cost.heads_per_frame;
  if (json) {
    nlohmann::json modules = nlohmann::json::array();
    for (const ModuleSummary& m : s.modules) {
      modules.push_back({{"name", m.name},
                         {"parameters", m.parameters},
                         {"buffers", m.buffers},
                         {"fp32_bytes", 4 * m.parameters}});
    }
    nlohmann::json j = {{"model", s.model},
                        {"parameters", s.parameters},
                        {"fp32_bytes", s.fp32_bytes},
                        {"modules", modules},
                        {"grid",
                         {{"pillar_w", s.geometry.pillar_w},
                          {"pillar_h", s.geometry.pillar_h},
                          {"feature_w", s.geometry.feature_w},
                          {"feature_h", s.geometry.feature_h}}},
                        {"multiply_adds",
                         {{"encode_per_agent", encode},
                          {"encode_pillars", pillars},
                          {"pyramid_per_agent", s.cost.pyramid_per_agent},
                          {"per_frame", per_frame},
                          {"frame_1_agent", encode + s.cost.FuseMacs(1)},
                          {"frame_4_agents", 4 * encode + s.cost.FuseMacs(4)}}}};
    std::printf("%s\n", j.dump(2).c_str());
    return absl::OkStatus();
  }
  std::printf(
      "model %s: pillar grid %lld x %lld, feature map %lld x %lld\n\n", s.model.c_str(),
      static_cast<long long>(s.geometry.pillar_w), static_cast<long long>(s.geometry.pillar_h),
      static_cast<long long>(s.geometry.feature_w), static_cast<long long>(s.geometry.feature_h));
  std::printf("%-18s %12s %14s\n", "module", "parameters", "fp32 bytes");
  for (const ModuleSummary& m : s.modules) {
    std::printf("%-18s %12s %14s\n", m.name.c_str(), Grouped(m.parameters).c_str(),
                Grouped(4 * m.parameters).c_str());
  }
  std::printf("%-18s %12s %14s  (%.1f MiB)\n\n", "total", Grouped(s.parameters).c_str(),
              Grouped(s.fp32_bytes).c_str(), static_cast<double>(s.fp32_bytes) / (1 << 20));
  std::printf("multiply-adds (FLOPs = 2 x):\n");
  std::printf("  encode, per agent       %8.2f G  (%lld pillars)\n", Giga(encode),
              static_cast<long long>(pillars));
  std::printf("  pyramid trunk, per agent %7.2f G\n", Giga(s.cost.pyramid_per_agent));
  std::printf("  decoders+shrink+heads   %8.2f G  per fused frame\n", Giga(per_frame));
  std::printf("  frame, 1 agent          %8.2f G\n", Giga(encode + s.cost.FuseMacs(1)));
  std::printf("  frame, 4 agents         %8.2f G\n", Giga(4 * encode + s.cost.FuseMacs(4)));
  return absl::OkStatus();
}

absl::Status RunInit(Args& args) {
  QV2X_ASSIGN_OR_RETURN(StageConfig cfg, Config(args));
  QV2X_ASSIGN_OR_RETURN(std::string out, args.Required("out"));
  QV2X_ASSIGN_OR_RETURN(int64_t seed, args.IntOr("seed", cfg.train_params.seed));
  QV2X_RETURN_IF_ERROR(args.Finish());
  if (seed < 0)
    return absl::InvalidArgumentError(absl::StrCat("--seed: expected >= 0, got ", seed));
  QV2X_ASSIGN_OR_RETURN(InitialCheckpoint info,
                        WriteInitialCheckpoint(cfg, static_cast<uint64_t>(seed), out));
  std::printf("wrote %s: %s parameters, seed %lld%s\n", out.c_str(),
              Grouped(info.parameters).c_str(), static_cast<long long>(seed),
              info.codebook_digest.empty()
                  ? ""
                  : absl::StrCat(", codebook ", info.codebook_digest).c_str());
  return absl::OkStatus();
}

void PrintInterop(const char* verb, const std::string& out, const InteropReport& r) {
  std::printf(
      "%s %s: %lld tensors%s%s\n", verb, out.c_str(), static_cast<long long>(r.tensors),
      r.prefixes_removed > 0
          ? absl::StrCat(" (", r.prefixes_removed, " `module.` prefixes removed)").c_str()
          : "",
      r.codebook_digest.empty() ? "" : absl::StrCat(", codebook ", r.codebook_digest).c_str());
}

absl::Status RunImport(Args& args) {
  QV2X_ASSIGN_OR_RETURN(StageConfig cfg, Config(args));
  QV2X_ASSIGN_OR_RETURN(std::string in, args.Required("from-quantv2x"));
  QV2X_ASSIGN_OR_RETURN(std::string out, args.Required("out"));
  QV2X_RETURN_IF_ERROR(args.Finish());
  QV2X_ASSIGN_OR_RETURN(InteropReport r, ImportQuantV2xCheckpoint(cfg, in, out));
  PrintInterop("wrote", out, r);
  return absl::OkStatus();
}

absl::Status RunExport(Args& args) {
  QV2X_ASSIGN_OR_RETURN(StageConfig cfg, Config(args));
  QV2X_ASSIGN_OR_RETURN(std::string in, args.Required("checkpoint"));
  QV2X_ASSIGN_OR_RETURN(std::string out, args.Required("to-quantv2x"));
  QV2X_RETURN_IF_ERROR(args.Finish());
  QV2X_ASSIGN_OR_RETURN(InteropReport r, ExportQuantV2xCheckpoint(cfg, in, out));
  PrintInterop("wrote", out, r);
  return absl::OkStatus();
}

absl::Status RunModel(Args& args) {
  const auto& pos = args.positional();
  const std::string sub = pos.size() == 1 ? pos[0] : "";
  if (sub == "summary") return RunSummary(args);
  if (sub == "init") return RunInit(args);
  if (sub == "import") return RunImport(args);
  if (sub == "export") return RunExport(args);
  if (sub == "inputs") return RunInputsCommand(args);
  if (sub == "forward") return RunForwardCommand(args);
  return absl::InvalidArgumentError(
      "expected `qv2x model summary`, `init`, `import`, `export`, `inputs` or `forward` (see "
      "--help)");
}

const Registration kRegistration(
    {"model",
     "model summary (parameters, FLOPs), initial checkpoints, inputs and a forward pass to a file",
     absl::StrCat(kUsage, "\n\n", kModelForwardUsage), RunModel});

}  // namespace
}  // namespace qv2x::cli
