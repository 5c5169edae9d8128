// qv2x-agent: one connected vehicle or roadside unit. Simulates its own LiDAR from the
// shared scene (or plays its sweeps back from a dataset, --dataset), encodes it and streams
// codebook indices to the fusion service; serves qv2x.v1.AgentControl.
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "agent/agent_runner.h"
#include "core/model/intra_op_threads.h"
#include "services/log.h"
#include "services/model_paths.h"
#include "services/playback_flags.h"
#include "services/security_flags.h"
#include "services/server_host.h"

ABSL_FLAG(std::string, scene, "", "scene file (required; the same file as every other agent)");
ABSL_FLAG(int, agent_id, 0, "this agent's id in the scene");
ABSL_FLAG(std::string, config, "", "stage YAML of the model (required)");
ABSL_FLAG(std::string, checkpoint, "",
          "stage-3 weights; empty: the seeded initial model every service builds alike");
ABSL_FLAG(std::string, int8_artifact, "", "INT8 encoder artifact (optional)");
ABSL_FLAG(std::string, precision, "fp32", "encoder at start: fp32 | int8");
ABSL_FLAG(std::string, fusion, "127.0.0.1:50080", "fusion service address");
ABSL_FLAG(std::string, fusion_tls_ca, "",
          "PEM CA that signed the fusion service's certificate: TLS to fusion, presenting "
          "--tls_cert / --tls_key as this agent's client certificate (named agent-<id>)");
ABSL_FLAG(std::string, artifacts, "",
          "folder LoadModel may read models from (paths outside are refused; relative paths are "
          "taken inside it); empty: any path this process can read");
ABSL_FLAG(std::string, listen, "127.0.0.1:50090", "AgentControl gRPC address");
ABSL_FLAG(std::string, metrics, "127.0.0.1:9490", "Prometheus /metrics address; empty disables");
ABSL_FLAG(std::string, codec, "zstd", "index coding: bitpack | zstd");
ABSL_FLAG(int, zstd_level, 3, "zstd compression level");
ABSL_FLAG(std::string, zstd_dictionary, "",
          "zstd dictionary to compress maps against (with --codec zstd; the fusion service must "
          "hold it: its --zstd_dictionary)");
ABSL_FLAG(double, sparse_min_span_m, -1,
          "sparse maps: send only cells whose points span this many metres vertically (and "
          "their neighbourhood, --sparse_dilation); negative: send every cell");
ABSL_FLAG(int, sparse_dilation, 2, "sparse maps: cells of context kept around each selected cell");
ABSL_FLAG(std::string, pace, "realtime",
          "realtime: one frame per scene tick (skipping ticks when late); lockstep: as fast as "
          "the fusion service closes frames");
ABSL_FLAG(int64_t, epoch_ms, 0, "realtime: wall-clock ms of scene tick 0 (same for all agents)");
ABSL_FLAG(int64_t, start_frame, 0, "lockstep: first frame id");
ABSL_FLAG(int, ahead, 1, "lockstep: frames sent ahead of the fusion service");
ABSL_FLAG(int64_t, max_frames, 0, "exit after sending this many frames (0: run until stopped)");
ABSL_FLAG(int, threads, 1, "intra-op threads");
ABSL_FLAG(int, max_message_bytes, 4 << 20, "largest gRPC message sent or received");
ABSL_FLAG(std::string, port_file, "",
          "write \"<grpc port> <metrics port>\" here once serving (for port 0)");

namespace {

int Run() {
  using qv2x::services::LogError;
  namespace agent = qv2x::agent;
  absl::StatusOr<qv2x::sim::SceneConfig> scene =
      qv2x::sim::LoadSceneConfig(absl::GetFlag(FLAGS_scene));
  if (!scene.ok()) {
    LogError(scene.status().message());
    return 2;
  }
  agent::AgentOptions options;
  options.agent_id = absl::GetFlag(FLAGS_agent_id);
  if (scene->FindAgent(options.agent_id) == nullptr) {
    LogError(
        absl::StrCat("--agent_id ", options.agent_id, " is not an agent of scene ", scene->name));
    return 2;
  }
  options.config_path = absl::GetFlag(FLAGS_config);
  if (options.config_path.empty()) {
    LogError("--config is required");
    return 2;
  }
  absl::StatusOr<qv2x::codec::IndexEncoding> enc =
      qv2x::codec::ParseEncoding(absl::GetFlag(FLAGS_codec));
  absl::StatusOr<agent::Precision> precision =
      agent::ParsePrecision(absl::GetFlag(FLAGS_precision));
  const std::string pace = absl::GetFlag(FLAGS_pace);
  if (!enc.ok() || !precision.ok() || (pace != "realtime" && pace != "lockstep")) {
    LogError(!enc.ok()         ? enc.status().message()
             : !precision.ok() ? precision.status().message()
                               : "--pace must be realtime or lockstep");
    return 2;
  }
  options.codec.encoding = *enc;
  options.codec.zstd_level = absl::GetFlag(FLAGS_zstd_level);
  if (const std::string path = absl::GetFlag(FLAGS_zstd_dictionary); !path.empty()) {
    if (*enc != qv2x::codec::IndexEncoding::kZstd) {
      LogError("--zstd_dictionary needs --codec zstd");
      return 2;
    }
    absl::StatusOr<std::shared_ptr<const qv2x::codec::ZstdDictionary>> dict =
        qv2x::codec::ZstdDictionary::Load(path, options.codec.zstd_level);
    if (!dict.ok()) {
      LogError(dict.status().message());
      return 2;
    }
    options.dictionary = *dict;
    options.codec.dictionary = options.dictionary.get();
  }
  if (const double span = absl::GetFlag(FLAGS_sparse_min_span_m); span >= 0) {
    if (absl::GetFlag(FLAGS_sparse_dilation) < 0) {
      LogError("--sparse_dilation must not be negative");
      return 2;
    }
    options.sparse = qv2x::CellSelection{span, absl::GetFlag(FLAGS_sparse_dilation)};
  }
  options.pace = pace == "lockstep" ? agent::Pace::kLockstep : agent::Pace::kRealtime;
  options.fusion_address = absl::GetFlag(FLAGS_fusion);
  options.epoch_ns = absl::GetFlag(FLAGS_epoch_ms) * 1'000'000;
  options.start_frame =
      static_cast<uint64_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_start_frame)));
  options.ahead = std::max(0, absl::GetFlag(FLAGS_ahead));
  options.max_frames = static_cast<uint64_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_max_frames)));
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  const qv2x::services::ServerSecurity security = qv2x::services::ServerSecurityFromFlags();
  if (const std::string ca = absl::GetFlag(FLAGS_fusion_tls_ca); !ca.empty()) {
    absl::StatusOr<qv2x::services::ClientSecurity> link =
        qv2x::services::ClientSecurity::Load({security.tls.cert, security.tls.key, ca}, "");
    if (!link.ok()) {
      LogError(absl::StrCat("--fusion_tls_ca: ", link.status().message()));
      return 2;
    }
    qv2x::services::SetProcessClientSecurity(std::move(*link));
  }
  qv2x::SetIntraOpThreads(std::max(1, absl::GetFlag(FLAGS_threads)));

  absl::StatusOr<qv2x::sim::ScenePlayback> playback =
      qv2x::services::ScenePlaybackFromFlags(*scene);
  if (!playback.ok()) {
    LogError(playback.status().message());
    return 1;
  }
  absl::StatusOr<std::shared_ptr<agent::AgentModel>> model = agent::AgentModel::Load(
      options.config_path, absl::GetFlag(FLAGS_checkpoint), absl::GetFlag(FLAGS_int8_artifact));
  if (!model.ok()) {
    LogError(model.status().message());
    return 1;
  }
  if (*precision == agent::Precision::kInt8 && !(*model)->has_int8()) {
    LogError("--precision int8 needs --int8_artifact");
    return 2;
  }

  qv2x::services::ServerOptions server;
  server.service_name = "agent";
  server.listen_address = absl::GetFlag(FLAGS_listen);
  server.metrics_address = absl::GetFlag(FLAGS_metrics);
  server.max_message_bytes = 1 << 20;
  server.security = security;
  qv2x::services::ServerHost host(server);
  agent::AgentRunner runner(options, &*playback, *model, *precision, host.registry());
  qv2x::services::ConfinedAgentControl confined(&runner, absl::GetFlag(FLAGS_artifacts));
  if (absl::GetFlag(FLAGS_artifacts).empty()) {
    qv2x::services::LogWarning("no --artifacts: LoadModel reads any path this process can read");
    host.AddService(&runner);
  } else {
    host.AddService(&confined);
  }
  host.OnShutdown([&] { runner.Stop(); });
  if (absl::Status st = host.StartAndAnnounce(absl::GetFlag(FLAGS_port_file)); !st.ok()) {
    LogError(st.message());
    return 1;
  }
  qv2x::services::LogInfo(absl::StrCat("agent ", options.agent_id, ": ", playback->Describe(),
                                       ", codebook ", (*model)->codebook_digest(), ", ", pace, ", ",
                                       absl::GetFlag(FLAGS_codec), " -> ", options.fusion_address));
  std::thread loop([&] {
    runner.Run();
    // With --max_frames the agent is done once its frames are out.
    if (options.max_frames > 0) host.RequestShutdown();
  });
  host.Wait();
  runner.Stop();
  loop.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "qv2x-agent --scene SCENE.yaml --agent_id ID --config STAGE.yaml [--checkpoint CKPT] "
      "[--fusion host:port]");
  absl::ParseCommandLine(argc, argv);
  qv2x::services::BlockTerminationSignals();
  return Run();
}
