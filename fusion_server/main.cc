// qv2x-fusion: the ego fusion service (qv2x.v1.Fusion).
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/model/intra_op_threads.h"
#include "core/sim/scene_config.h"
#include "fusion_server/fusion_service.h"
#include "services/agent_identity.h"
#include "services/log.h"
#include "services/playback_flags.h"
#include "services/security_flags.h"
#include "services/server_host.h"

ABSL_FLAG(std::string, scene, "", "scene file: agents, rate and ground truth (required)");
ABSL_FLAG(std::string, config, "", "stage YAML of the model (required)");
ABSL_FLAG(std::string, checkpoint, "",
          "stage-3 weights; empty: the seeded initial model every service builds alike");
ABSL_FLAG(std::string, listen, "127.0.0.1:50080", "gRPC address (host:port)");
ABSL_FLAG(std::string, metrics, "127.0.0.1:9480", "Prometheus /metrics address; empty disables");
ABSL_FLAG(int, deadline_ms, 300, "fuse with the agents that arrived this long after the first");
ABSL_FLAG(int, startup_grace_ms, 30000,
          "wait this long at start-up for agents that have not connected yet");
ABSL_FLAG(std::string, agents, "",
          "comma-separated agent ids to expect (default: every agent of the scene)");
ABSL_FLAG(std::string, int8_artifact, "", "INT8 artifact for the ego half (optional)");
ABSL_FLAG(std::string, precision, "fp32", "ego half at start: fp32 | int8 (needs --int8_artifact)");
ABSL_FLAG(int, max_cav, 0, "agents fused per frame, the ego included (0: the config's max_cav)");
ABSL_FLAG(int, ap_window, 100, "frames in the rolling AP window");
ABSL_FLAG(bool, score, true,
          "score fused frames against the scene's ground truth (rolling AP); off for agents "
          "that are not the scene's, e.g. `qv2x scene bench --replay`");
ABSL_FLAG(int, max_fuse_backlog, 2,
          "closed frames waiting to be fused; when fusing falls behind, the oldest beyond this "
          "are dropped (qv2x_fusion_frames_total{outcome=\"overload\"})");
ABSL_FLAG(int, threads, 0, "intra-op threads (0 = library default)");
ABSL_FLAG(int, max_feature_bytes, 4 << 20,
          "largest feature message accepted (larger ones are rejected and counted)");
ABSL_FLAG(int, max_decoded_bytes, 16 << 20, "largest index map after decompression");
ABSL_FLAG(int, stall_ms, 30000,
          "stop waiting for a connected agent that has sent nothing for this long");
ABSL_FLAG(int, max_frames_ahead, 100,
          "refuse frame ids further ahead of the last closed frame (plus the scene clock since)");
ABSL_FLAG(int, max_capture_ahead_ms, 5000, "refuse capture times this far ahead of our clock");
ABSL_FLAG(int, max_capture_age_ms, 60000, "refuse capture times older than this");
ABSL_FLAG(std::string, artifacts, "",
          "LoadModel reads model files from inside this folder only (empty: any path)");
ABSL_FLAG(std::vector<std::string>, zstd_dictionary, {},
          "zstd dictionaries (comma-separated files) agents may compress their maps against");
ABSL_FLAG(std::string, port_file, "",
          "write \"<grpc port> <metrics port>\" here once serving (for port 0)");

namespace {

int Run() {
  using qv2x::services::LogError;
  using qv2x::services::LogWarning;
  absl::StatusOr<qv2x::sim::SceneConfig> scene =
      qv2x::sim::LoadSceneConfig(absl::GetFlag(FLAGS_scene));
  if (!scene.ok()) {
    LogError(scene.status().message());
    return 2;
  }
  if (absl::GetFlag(FLAGS_config).empty()) {
    LogError("--config is required");
    return 2;
  }
  if (int t = absl::GetFlag(FLAGS_threads); t > 0) qv2x::SetIntraOpThreads(t);
  absl::StatusOr<qv2x::sim::ScenePlayback> playback =
      qv2x::services::ScenePlaybackFromFlags(*scene);
  if (!playback.ok()) {
    LogError(playback.status().message());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<qv2x::fusion::FusionEngine>> engine =
      qv2x::fusion::FusionEngine::Create(
          absl::GetFlag(FLAGS_config), absl::GetFlag(FLAGS_checkpoint), std::move(*playback),
          absl::GetFlag(FLAGS_ap_window), absl::GetFlag(FLAGS_max_cav),
          absl::GetFlag(FLAGS_int8_artifact));
  if (!engine.ok()) {
    LogError(engine.status().message());
    return 1;
  }
  if (const std::string p = absl::GetFlag(FLAGS_precision); p != "fp32") {
    absl::Status st = p == "int8" ? (*engine)->SetInt8(true)
                                  : absl::InvalidArgumentError("--precision: fp32 or int8");
    if (!st.ok()) {
      LogError(st.message());
      return 2;
    }
  }
  qv2x::fusion::FusionOptions options;
  for (const auto& a : scene->agents) options.assembler.expected_agents.push_back(a.id);
  if (const std::string subset = absl::GetFlag(FLAGS_agents); !subset.empty()) {
    options.assembler.expected_agents.clear();
    for (absl::string_view part : absl::StrSplit(subset, ',', absl::SkipEmpty())) {
      int id = 0;
      if (!absl::SimpleAtoi(part, &id) || scene->FindAgent(id) == nullptr) {
        LogError(absl::StrCat("--agents: \"", std::string(part), "\" is not an agent of scene ",
                              scene->name));
        return 2;
      }
      options.assembler.expected_agents.push_back(id);
    }
  }
  options.assembler.ego_id = scene->ego_id;
  options.assembler.deadline = std::chrono::milliseconds(absl::GetFlag(FLAGS_deadline_ms));
  options.assembler.startup_grace =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_startup_grace_ms));
  options.max_message_bytes = absl::GetFlag(FLAGS_max_feature_bytes);
  options.max_decoded_bytes = absl::GetFlag(FLAGS_max_decoded_bytes);
  options.artifacts_dir = absl::GetFlag(FLAGS_artifacts);
  if (options.artifacts_dir.empty()) {
    LogWarning("no --artifacts: LoadModel reads any path this process can read");
  }
  options.assembler.max_frames_ahead = absl::GetFlag(FLAGS_max_frames_ahead);
  options.assembler.stall_after = std::chrono::milliseconds(absl::GetFlag(FLAGS_stall_ms));
  options.assembler.rate_hz = scene->rate_hz;
  if ((*engine)->playback().is_dataset()) {
    const qv2x::sim::ScenePlayback* source = &(*engine)->playback();
    options.assembler.plays = [source](uint64_t frame_id, int agent_id) {
      return source->Plays(frame_id, agent_id);
    };
  }
  options.max_capture_ahead_ns = absl::GetFlag(FLAGS_max_capture_ahead_ms) * int64_t{1'000'000};
  options.max_capture_age_ns = absl::GetFlag(FLAGS_max_capture_age_ms) * int64_t{1'000'000};
  if (absl::GetFlag(FLAGS_max_fuse_backlog) < 1) {
    LogError("--max_fuse_backlog must be at least 1");
    return 2;
  }
  options.max_fuse_backlog = absl::GetFlag(FLAGS_max_fuse_backlog);
  options.score = absl::GetFlag(FLAGS_score);
  for (const std::string& path : absl::GetFlag(FLAGS_zstd_dictionary)) {
    absl::StatusOr<std::shared_ptr<const qv2x::codec::ZstdDictionary>> dict =
        qv2x::codec::ZstdDictionary::Load(path, /*level=*/3);
    if (!dict.ok()) {
      LogError(dict.status().message());
      return 1;
    }
    options.dictionaries[(*dict)->digest()] = *dict;
  }

  qv2x::services::ServerOptions server;
  server.service_name = "fusion";
  server.listen_address = absl::GetFlag(FLAGS_listen);
  server.metrics_address = absl::GetFlag(FLAGS_metrics);
  // gRPC's own cap sits above the service's limit so that an oversized message reaches
  // the validator and is counted instead of ending the agent's stream.
  server.max_message_bytes = 4 * absl::GetFlag(FLAGS_max_feature_bytes);
  server.security = qv2x::services::ServerSecurityFromFlags();
  // With mutual TLS every feature stream is checked against its certificate's agent name.
  if (!server.security.tls.ca.empty()) options.authorize_agent = qv2x::services::AuthorizeAgent;
  qv2x::services::ServerHost host(server);
  qv2x::fusion::FusionService service(engine->get(), options, host.registry());
  host.AddService(&service);
  host.OnShutdown([&] { service.Stop(); });
  service.Start();
  if (absl::Status st = host.StartAndAnnounce(absl::GetFlag(FLAGS_port_file)); !st.ok()) {
    LogError(st.message());
    return 1;
  }
  qv2x::services::LogInfo(absl::StrCat("fusion: ", (*engine)->playback().Describe(), ", agents [",
                                       absl::StrJoin(options.assembler.expected_agents, ", "),
                                       "], codebook ", (*engine)->codebook_digest(), ", grid ",
                                       (*engine)->grid().levels, "x", (*engine)->grid().height, "x",
                                       (*engine)->grid().width));
  host.Wait();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "qv2x-fusion --scene SCENE.yaml --config STAGE.yaml [--checkpoint CKPT] [--listen h:p]");
  absl::ParseCommandLine(argc, argv);
  qv2x::services::BlockTerminationSignals();
  return Run();
}
