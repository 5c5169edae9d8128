// `qv2x agent status|set-precision|load|set-sparsity`: control of a running agent
// (qv2x.v1.AgentControl), and `qv2x watch`: the fusion service's live detections.
#include <cstdio>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "qv2x/v1/agent.grpc.pb.h"
#include "qv2x/v1/features.grpc.pb.h"
#include "services/status_convert.h"
#include "tools/qv2x/client/client_security.h"
#include "tools/qv2x/client/endpoints.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {
namespace {

constexpr char kAgentUsage[] =
    R"(usage: qv2x agent status        --agent ID [WHERE]
       qv2x agent set-precision --agent ID fp32|int8 [WHERE]
       qv2x agent load          --agent ID [--checkpoint CKPT] [--int8 ARTIFACT] [WHERE]
       qv2x agent set-sparsity  --agent ID off|SPAN_M [--dilation CELLS] [WHERE]
WHERE: --address HOST:PORT | --endpoints FILE | --scene SCENE.yaml
       (default: the running `qv2x scene up` of configs/scenes/intersection.yaml, or its
       fixed ports)
%s

Changes take effect between two frames; the reply names the first frame encoded with
them. A model whose codebook differs from the running one is refused (the fusion service
could not decode its indices). The agent reads models only inside its --artifacts folder;
a relative path that exists here is sent as an absolute path.

set-sparsity SPAN_M: the agent sends only the cells of its map whose points span at least
SPAN_M metres vertically, and --dilation cells (default 2) around them; fusion treats
the rest as empty. `off`: every cell again.)";

constexpr char kDefaultScene[] = "configs/scenes/intersection.yaml";

// Where a command connects, and the security recorded for the scene (if any).
struct Target {
  std::string address;
  SecurityFiles recorded;
};

absl::StatusOr<Target> AgentAddress(Args& args, int64_t id) {
  if (auto a = args.Get("address")) return Target{*a, {}};
  QV2X_ASSIGN_OR_RETURN(Endpoints e, ResolveEndpoints(args.GetOr("endpoints", ""),
                                                      args.GetOr("scene", kDefaultScene)));
  auto it = e.agents.find(static_cast<int>(id));
  if (it == e.agents.end()) {
    return absl::NotFoundError(absl::StrCat("no agent ", id, " in scene ", e.scene));
  }
  return Target{it->second.grpc(), e.security};
}

// The fusion service: `flag` (--fusion or --address) or the scene's endpoints.
absl::StatusOr<Target> FusionAddress(Args& args, const std::string& flag) {
  if (auto a = args.Get(flag)) return Target{*a, {}};
  QV2X_ASSIGN_OR_RETURN(Endpoints e, ResolveEndpoints(args.GetOr("endpoints", ""),
                                                      args.GetOr("scene", kDefaultScene)));
  return Target{e.fusion.grpc(), e.security};
}

// A model path for a service on this machine: made absolute when it exists here (the
// service confines paths to its artifacts folder and takes relative ones inside it).
std::string ModelPath(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !std::filesystem::path(path).is_relative() ||
      !std::filesystem::exists(path, ec)) {
    return path;
  }
  return std::filesystem::absolute(path).lexically_normal().string();
}

std::string PrecisionText(v1::Precision p) { return p == v1::PRECISION_INT8 ? "int8" : "fp32"; }

absl::StatusOr<v1::Precision> ParsePrecisionArg(const std::string& p) {
  if (p == "fp32") return v1::PRECISION_FP32;
  if (p == "int8") return v1::PRECISION_INT8;
  return absl::InvalidArgumentError(absl::StrCat("precision must be fp32 or int8, got ", p));
}

void PrintStatus(const v1::AgentStatus& s) {
  const v1::Sparsity& sp = s.sparsity();
  std::printf(
      "agent %d: %s, %s, %s to %s\n  model %s%s\n  codebook %s, generation %llu\n"
      "  frames sent %llu (%llu bytes), skipped %llu, rejected %llu, last frame %llu\n",
      s.agent_id(), PrecisionText(s.precision()).c_str(),
      s.encoding() == v1::INDEX_ENCODING_ZSTD ? "zstd" : "bitpack",
      s.connected() ? "connected" : "NOT connected", s.fusion_address().c_str(),
      s.checkpoint().empty() ? "(seeded initial model)" : s.checkpoint().c_str(),
      s.int8_artifact().empty() ? "" : absl::StrCat(", int8 ", s.int8_artifact()).c_str(),
      s.codebook_digest().c_str(), static_cast<unsigned long long>(s.model_generation()),
      static_cast<unsigned long long>(s.frames_sent()),
      static_cast<unsigned long long>(s.bytes_sent()),
      static_cast<unsigned long long>(s.frames_skipped()),
      static_cast<unsigned long long>(s.frames_rejected()),
      static_cast<unsigned long long>(s.last_frame_id()));
  std::printf("  %s%s\n",
              sp.enabled() ? absl::StrFormat("sparse maps: cells spanning >= %.2f m, dilation %u",
                                             sp.min_height_span_m(), sp.dilation_cells())
                                 .c_str()
                           : "dense maps",
              s.dictionary_digest().empty()
                  ? ""
                  : absl::StrCat(", zstd dictionary ", s.dictionary_digest()).c_str());
}

absl::Status RunAgent(Args& args) {
  if (args.positional().empty()) return absl::InvalidArgumentError("expected a subcommand");
  const std::string sub = args.positional()[0];
  QV2X_ASSIGN_OR_RETURN(std::string id_text, args.Required("agent"));
  int64_t id = 0;
  if (!absl::SimpleAtoi(id_text, &id)) {
    return absl::InvalidArgumentError(absl::StrCat("--agent: not an agent id: ", id_text));
  }
  QV2X_ASSIGN_OR_RETURN(Target target, AgentAddress(args, id));
  const std::string checkpoint = ModelPath(args.GetOr("checkpoint", ""));
  const std::string int8 = ModelPath(args.GetOr("int8", ""));
  QV2X_ASSIGN_OR_RETURN(int64_t dilation, args.IntOr("dilation", 2));
  const SecurityFiles security = SecurityFlags(args);
  QV2X_RETURN_IF_ERROR(args.Finish());
  QV2X_ASSIGN_OR_RETURN(auto channel, Dial(target.address, security, target.recorded));
  auto stub = v1::AgentControl::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  if (sub == "status") {
    if (args.positional().size() != 1) return absl::InvalidArgumentError("status takes no value");
    v1::AgentStatus s;
    QV2X_RETURN_IF_ERROR(services::FromGrpc(stub->GetStatus(&ctx, v1::AgentStatusRequest(), &s)));
    PrintStatus(s);
    return absl::OkStatus();
  }
  v1::ControlReply reply;
  if (sub == "set-precision") {
    if (args.positional().size() != 2) {
      return absl::InvalidArgumentError("set-precision takes fp32 or int8");
    }
    QV2X_ASSIGN_OR_RETURN(v1::Precision p, ParsePrecisionArg(args.positional()[1]));
    v1::SetPrecisionRequest req;
    req.set_precision(p);
    QV2X_RETURN_IF_ERROR(services::FromGrpc(stub->SetPrecision(&ctx, req, &reply)));
  } else if (sub == "load") {
    v1::LoadModelRequest req;
    req.set_checkpoint(checkpoint);
    req.set_int8_artifact(int8);
    QV2X_RETURN_IF_ERROR(services::FromGrpc(stub->LoadModel(&ctx, req, &reply)));
  } else if (sub == "set-sparsity") {
    if (args.positional().size() != 2) {
      return absl::InvalidArgumentError("set-sparsity takes off or a height span in metres");
    }
    v1::SetSparsityRequest req;
    if (const std::string& v = args.positional()[1]; v != "off") {
      double span = 0;
      if (!absl::SimpleAtod(v, &span)) {
        return absl::InvalidArgumentError(absl::StrCat("set-sparsity: not a span in metres: ", v));
      }
      req.mutable_sparsity()->set_enabled(true);
      req.mutable_sparsity()->set_min_height_span_m(span);
      req.mutable_sparsity()->set_dilation_cells(
          static_cast<uint32_t>(std::max<int64_t>(0, dilation)));
    }
    QV2X_RETURN_IF_ERROR(services::FromGrpc(stub->SetSparsity(&ctx, req, &reply)));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown agent subcommand ", sub));
  }
  std::printf("applied from frame %llu\n",
              static_cast<unsigned long long>(reply.effective_frame_id()));
  PrintStatus(reply.status());
  return absl::OkStatus();
}

constexpr char kWatchUsage[] =
    R"(usage: qv2x watch [--fusion HOST:PORT | --endpoints FILE | --scene SCENE.yaml] [--frames N]
                  [--boxes] [--json] [SECURITY]
%s

Prints every fused frame as the fusion service publishes it: frame, agents fused, boxes,
end-to-end latency, bytes received, rolling vehicle AP@0.5; --boxes lists the boxes;
--json prints each frame as one line of JSON (the qv2x.v1.DetectionFrame message).)";

// One protobuf message as JSON with the .proto field names, defaults included.
absl::StatusOr<std::string> ProtoJson(const google::protobuf::Message& m) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  if (auto st = google::protobuf::util::MessageToJsonString(m, &text, options); !st.ok()) {
    return absl::InternalError(st.ToString());
  }
  return text;
}

// One line per fused frame; with `boxes`, one more per box.
void PrintFrame(const v1::DetectionFrame& f, bool boxes) {
  uint64_t bytes = 0;
  std::string ids;
  for (const auto& a : f.agents()) {
    bytes += a.message_bytes();
    absl::StrAppend(&ids, ids.empty() ? "" : ",", a.agent_id(),
                    a.precision() == v1::PRECISION_INT8 ? "(int8)" : "");
  }
  double vehicle_ap = 0;
  for (const auto& c : f.rolling_ap()) {
    if (c.class_name() == "vehicle") vehicle_ap = c.ap_50();
  }
  std::printf(
      "frame %llu (scenario %d #%d)  agents [%s]  %d boxes  e2e %.1f ms  %llu B  "
      "vehicle AP@0.5 %.3f\n",
      static_cast<unsigned long long>(f.frame_id()), f.scenario(), f.frame_index(), ids.c_str(),
      f.boxes_size(), 1e3 * f.e2e_latency_seconds(), static_cast<unsigned long long>(bytes),
      vehicle_ap);
  if (!boxes) return;
  for (const auto& b : f.boxes()) {
    std::printf("  %-10s x %7.2f y %7.2f z %5.2f  l %4.2f w %4.2f h %4.2f  yaw %5.2f  %.2f\n",
                b.class_name().c_str(), b.x(), b.y(), b.z(), b.l(), b.w(), b.h(), b.yaw(),
                b.score());
  }
}

absl::Status RunWatch(Args& args) {
  QV2X_ASSIGN_OR_RETURN(Target target, FusionAddress(args, "fusion"));
  QV2X_ASSIGN_OR_RETURN(int64_t frames, args.IntOr("frames", 0));
  const bool boxes = args.Switch("boxes");
  const bool json = args.Switch("json");
  const SecurityFiles security = SecurityFlags(args);
  QV2X_RETURN_IF_ERROR(args.Finish());
  QV2X_ASSIGN_OR_RETURN(auto channel, Dial(target.address, security, target.recorded));
  auto stub = v1::Fusion::NewStub(channel);
  grpc::ClientContext ctx;
  auto reader = stub->WatchDetections(&ctx, v1::WatchRequest());
  v1::DetectionFrame f;
  int64_t n = 0;
  while (reader->Read(&f)) {
    if (json) {
      QV2X_ASSIGN_OR_RETURN(std::string line, ProtoJson(f));
      std::printf("%s\n", line.c_str());
    } else {
      PrintFrame(f, boxes);
    }
    std::fflush(stdout);
    if (frames > 0 && ++n >= frames) {
      ctx.TryCancel();
      break;
    }
  }
  grpc::Status st = reader->Finish();
  if (frames > 0 && n >= frames) return absl::OkStatus();
  return st.ok() ? absl::OkStatus() : services::FromGrpc(st);
}

constexpr char kFusionUsage[] =
    R"(usage: qv2x fusion status [--json] [WHERE]
       qv2x fusion set-precision fp32|int8 [WHERE]
       qv2x fusion load --checkpoint CKPT [--int8 ARTIFACT] [WHERE]
       qv2x fusion retire-codebook DIGEST [--force] [WHERE]
WHERE: --address HOST:PORT | --endpoints FILE | --scene SCENE.yaml
%s

The fusion service's state (frames fused and dropped, connected agents, the codebooks it
accepts and which agents send each, grid, rolling AP) and the precision of its ego half
(INT8 needs an INT8 artifact); a switch applies from the next frame fused. --json prints
the status message as JSON.

A model roll-out without stopping the scene: `fusion load` runs the new weights from the
next frame and keeps accepting the previous codebook; then `qv2x agent load` each agent;
then `fusion retire-codebook` the old digest (refused while a connected agent still sends
it, unless --force).)";

absl::Status RunFusion(Args& args) {
  if (args.positional().empty()) return absl::InvalidArgumentError("expected a subcommand");
  const std::string sub = args.positional()[0];
  QV2X_ASSIGN_OR_RETURN(Target target, FusionAddress(args, "address"));
  const bool json = args.Switch("json");
  const bool force = args.Switch("force");
  const std::string checkpoint = ModelPath(args.GetOr("checkpoint", ""));
  const std::string int8 = ModelPath(args.GetOr("int8", ""));
  const SecurityFiles security = SecurityFlags(args);
  QV2X_RETURN_IF_ERROR(args.Finish());
  QV2X_ASSIGN_OR_RETURN(auto channel, Dial(target.address, security, target.recorded));
  auto stub = v1::Fusion::NewStub(channel);
  grpc::ClientContext ctx;
  // A load reads and checks a checkpoint (and an INT8 artifact) on a busy machine.
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  v1::FusionStatus s;
  if (sub == "status" && args.positional().size() == 1) {
    QV2X_RETURN_IF_ERROR(services::FromGrpc(stub->GetStatus(&ctx, {}, &s)));
  } else if (sub == "set-precision" && args.positional().size() == 2) {
    QV2X_ASSIGN_OR_RETURN(v1::Precision p, ParsePrecisionArg(args.positional()[1]));
    v1::FusionPrecisionRequest req;
    req.set_precision(p);
    QV2X_RETURN_IF_ERROR(services::FromGrpc(stub->SetPrecision(&ctx, req, &s)));
  } else if (sub == "load" && args.positional().size() == 1) {
    if (checkpoint.empty()) return absl::InvalidArgumentError("load needs --checkpoint");
    v1::FusionLoadModelRequest req;
    req.set_checkpoint(checkpoint);
    req.set_int8_artifact(int8);
    QV2X_RETURN_IF_ERROR(services::FromGrpc(stub->LoadModel(&ctx, req, &s)));
  } else if (sub == "retire-codebook" && args.positional().size() == 2) {
    v1::RetireCodebookRequest req;
    req.set_digest(args.positional()[1]);
    req.set_force(force);
    QV2X_RETURN_IF_ERROR(services::FromGrpc(stub->RetireCodebook(&ctx, req, &s)));
  } else {
    return absl::InvalidArgumentError(
        "expected `status`, `set-precision fp32|int8`, `load --checkpoint CKPT` or "
        "`retire-codebook DIGEST`");
  }
  if (json) {
    QV2X_ASSIGN_OR_RETURN(std::string text, ProtoJson(s));
    std::printf("%s\n", text.c_str());
    return absl::OkStatus();
  }
  std::string connected;
  for (int id : s.connected_agents()) absl::StrAppend(&connected, connected.empty() ? "" : ",", id);
  std::printf(
      "fusion: %s%s, %llu frames fused, %llu dropped, agents connected [%s]\n"
      "  codebook %s, grid %ux%ux%u (%u codes)\n",
      PrecisionText(s.precision()).c_str(), s.int8_available() ? " (int8 available)" : "",
      static_cast<unsigned long long>(s.frames_fused()),
      static_cast<unsigned long long>(s.frames_dropped()), connected.c_str(),
      s.codebook_digest().c_str(), s.grid().levels(), s.grid().height(), s.grid().width(),
      s.grid().dict_size());
  std::printf("  model %s%s, generation %llu\n",
              s.checkpoint().empty() ? "(seeded initial model)" : s.checkpoint().c_str(),
              s.int8_artifact().empty() ? "" : absl::StrCat(", int8 ", s.int8_artifact()).c_str(),
              static_cast<unsigned long long>(s.model_generation()));
  for (const v1::HeldCodebook& c : s.codebooks()) {
    std::string agents;
    for (int id : c.agents()) absl::StrAppend(&agents, agents.empty() ? "" : ",", id);
    std::printf("  codebook %s%s: %llu messages, last frame %llu, sent by [%s]\n",
                c.digest().c_str(), c.current() ? " (current)" : "",
                static_cast<unsigned long long>(c.messages()),
                static_cast<unsigned long long>(c.last_frame_id()), agents.c_str());
  }
  for (const auto& c : s.rolling_ap()) {
    std::printf("  rolling AP %-10s %.3f / %.3f / %.3f\n", c.class_name().c_str(), c.ap_30(),
                c.ap_50(), c.ap_70());
  }
  return absl::OkStatus();
}

const Registration kFusion({"fusion", "status, ego-half precision and model roll-out of fusion",
                            WithSecurity(kFusionUsage), RunFusion});
const Registration kAgent({"agent", "status, precision switch and model load of a running agent",
                           WithSecurity(kAgentUsage), RunAgent});
const Registration kWatch({"watch", "print the fusion service's live detections",
                           WithSecurity(kWatchUsage), RunWatch});

}  // namespace
}  // namespace qv2x::cli
