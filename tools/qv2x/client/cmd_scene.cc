// `qv2x scene up`: the local launcher. `qv2x scene bench`: the cluster benchmark (bytes per
// message by codec, latency and fused frames per second for several agent counts).
// `qv2x scene record` and `qv2x scene bench --replay`: the fusion service's capacity from
// recorded agent messages.
#include <signal.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "tools/qv2x/client/fusion_capacity.h"
#include "tools/qv2x/client/scene_launcher.h"
#include "tools/qv2x/client/scene_record.h"
#include "tools/qv2x/client/scene_summary.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {
namespace {

constexpr char kUpUsage[] =
    R"(usage: qv2x scene up --config SCENE.yaml [--frames N] [--json FILE] [--print-frames]
                     [--codec bitpack|zstd] [--pace realtime|lockstep] [--precision fp32|int8]
                     [--checkpoint CKPT] [--agents N] [--run-dir DIR] [--ephemeral-ports]
                     [--with-training] [--artifacts DIR]
                     [--tls-dir DIR [--mtls]] [--token-file FILE]

Starts the scene's services on 127.0.0.1 as child processes (fusion, one agent per scene
agent, and the trainer / quantizer when the scene's `cluster:` section enables them) with
the ports from the scene file, waits until all report SERVING and prints where their
metrics are. It supervises them (a crashed service is restarted on its ports) until
Ctrl-C / SIGTERM, then stops them all gracefully.
  --frames N         stop after N fused frames and print a summary: frames fused, agents
                     per frame, bytes per message by codec, compression ratio against FP32
                     features, encode and end-to-end latency p50/p95, rolling AP
  --json FILE        also write that summary as JSON
  --print-frames     one line per fused frame
  --codec/--pace/--precision/--checkpoint   override the scene file's cluster settings
  --agents N         run only the first N agents (the ego first)
  --run-dir DIR      logs, port files and endpoints.json (default .qv2x-run/<scene name>)
  --ephemeral-ports  let the OS pick every port (see endpoints.json)
  --with-training    also start the trainer and the quantizer (whatever the scene says)
  --artifacts DIR    their artifacts folder (checkpoints, INT8 artifacts); agents load
                     models (qv2x agent load) only from there
  --tls-dir DIR      TLS for every service with the certificates in DIR, as
                     deploy/tls/make-certs.sh writes them (ca.crt, fusion.crt, agent-<id>.crt,
                     trainer.crt, quantizer.crt, client.crt and their .key files)
  --mtls             mutual TLS: every server requires a client certificate signed by
                     DIR/ca.crt, and fusion checks each agent's id against its certificate
  --token-file FILE  control RPCs (set precision, load, train, quantize, cancel) need the
                     bearer token in FILE
  The last three override the scene's `cluster.security` block; endpoints.json records the
  client files, so `qv2x agent ...`, `qv2x fusion ...`, `qv2x watch` find them.)";

constexpr char kBenchUsage[] =
    R"(usage: qv2x scene bench --config SCENE.yaml [--agents 1,2,4,8] [--codecs bitpack,zstd]
                        [--frames N] [--json FILE] [--checkpoint CKPT]

Runs the scene in lock-step (agents as fast as the fusion service closes frames) once per
agent count and codec, and prints one table row per run: bytes per message (mean, p95),
ratio to FP32 features, index entropy, encode and end-to-end latency p50/p95 and fused
frames per second. Every run starts fresh services on ports the OS picks.)";

constexpr char kRecordUsage[] =
    R"(usage: qv2x scene record --config SCENE.yaml --out DIR [--frames 50] [--agents N]
                         [--precisions fp32,int8] [--codec bitpack|zstd] [--checkpoint CKPT]
                         [--run-dir DIR]

Runs the scene's real services in lock-step (fusion and the first N agents, ego first, all
by default) and records every feature message the agents send for frames 0 .. frames-1,
once per encoder precision (default: FP32, and INT8 when the scene's model has an INT8
artifact). Writes DIR/scene.yaml (the scene with the model the services ran) and
DIR/<precision>.qv2xrec: a line "qv2x-feature-record 1", a one-line JSON header (scene,
preset, model files, codebook digest, precision, codec, agents, frames, message count),
then each qv2x.v1.FeatureMessage length-delimited (varint byte length, then its bytes).)";

constexpr char kReplayUsage[] =
    R"(usage: qv2x scene bench --replay DIR [--agents 1,2,4,8,16,24,32] [--rate 10]
                        [--frames 100] [--warmup 10] [--precisions fp32,int8]
                        [--latency-bound-ms 100] [--json FILE] [--plot PNG] [--note TEXT]
                        [--max-fuse-backlog K] [--run-dir DIR]
                        [--fusion HOST:PORT | --write-scene FILE]

Fusion capacity from a recording of `qv2x scene record`. For each agent count N: starts the
scene's fusion service (qv2x-fusion, N agents all fused, no live scoring) on a generated
scene listing N agents (the recorded ones, then clones of them under new ids, each 3
frames behind its source), opens one stream per agent from this process and sends every
agent's messages at --rate (renamed to the agent and frame, capture time = send time),
--warmup frames then --frames measured, once per precision (the ego half switched, each
fed its own encoders' recording). One row per run: frames fused and dropped, fused
frames/s, end-to-end latency p50/p95/p99/max (send of a frame's first message to its
boxes), fuse time; then the largest N that sustained the rate (nothing dropped, every
agent fused) with p99 under the bound.
  --json FILE         every run's figures (written after each agent count)
  --plot PNG          p99 and fused frames/s against N, FP32 and INT8 (gnuplot, pngcairo)
  --note TEXT         measuring conditions, kept in the JSON and the plot
  --fusion HOST:PORT  stream into this running fusion service instead (one agent count; it
                      must run the scene --write-scene writes, frames from 0)
  --write-scene FILE  write the replay scene for the one agent count and stop)";

absl::Status ReadLaunchOverrides(Args& args, LaunchOptions* o) {
  if (auto v = args.Get("codec")) o->codec = *v;
  if (auto v = args.Get("pace")) o->pace = *v;
  if (auto v = args.Get("precision")) o->precision = *v;
  if (auto v = args.Get("checkpoint")) o->checkpoint = *v;
  if (auto v = args.Get("artifacts")) o->artifacts = *v;
  if (auto v = args.Get("tls-dir")) o->tls_dir = *v;
  if (auto v = args.Get("token-file")) o->auth_token_file = *v;
  if (args.Switch("mtls")) o->mutual_tls = true;
  o->with_training = args.Switch("with-training");
  return absl::OkStatus();
}

void BlockStopSignals() {
  // Before any thread starts, so the launcher alone receives them (sigtimedwait).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

absl::Status RunSceneUp(Args& args) {
  if (args.positional().size() != 1 || args.positional()[0] != "up") {
    return absl::InvalidArgumentError("expected `qv2x scene up` or `qv2x scene bench`");
  }
  LaunchOptions o;
  QV2X_ASSIGN_OR_RETURN(o.scene_path, args.Required("config"));
  QV2X_ASSIGN_OR_RETURN(int64_t frames, args.IntOr("frames", 0));
  QV2X_ASSIGN_OR_RETURN(int64_t agents, args.IntOr("agents", 0));
  const std::string json_path = args.GetOr("json", "");
  const bool print_frames = args.Switch("print-frames");
  o.run_dir = args.GetOr("run-dir", "");
  o.ephemeral_ports = args.Switch("ephemeral-ports");
  o.num_agents = static_cast<int>(agents);
  QV2X_RETURN_IF_ERROR(ReadLaunchOverrides(args, &o));
  QV2X_RETURN_IF_ERROR(args.Finish());
  if (frames < 0 || agents < 0) return absl::InvalidArgumentError("--frames and --agents >= 0");
  BlockStopSignals();
  QV2X_ASSIGN_OR_RETURN(std::unique_ptr<SceneLauncher> scene, SceneLauncher::Up(o));
  std::printf("scene up; %s\n",
              frames > 0 ? absl::StrCat("stopping after ", frames, " fused frames").c_str()
                         : "Ctrl-C stops it");
  std::fflush(stdout);
  QV2X_ASSIGN_OR_RETURN(nlohmann::json summary, scene->Run(frames, print_frames));
  std::printf("%s", SceneSummary::Table(summary).c_str());
  if (!json_path.empty()) QV2X_RETURN_IF_ERROR(WriteFileAtomic(json_path, summary.dump(2) + "\n"));
  if (frames > 0 && summary["frames_fused"].get<int64_t>() < frames) {
    return absl::AbortedError(absl::StrCat("stopped after ", summary["frames_fused"].get<int64_t>(),
                                           " of ", frames, " frames"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int>> AgentCounts(const std::string& list) {
  std::vector<int> counts;
  for (absl::string_view s : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(s, &n) || n < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--agents: bad count \"", std::string(s), "\""));
    }
    counts.push_back(n);
  }
  return counts;
}

absl::Status RunSceneBench(Args& args) {
  LaunchOptions base;
  QV2X_ASSIGN_OR_RETURN(base.scene_path, args.Required("config"));
  QV2X_ASSIGN_OR_RETURN(int64_t frames, args.IntOr("frames", 20));
  const std::string agents_list = args.GetOr("agents", "1,2,4,8");
  const std::string codecs_list = args.GetOr("codecs", "bitpack,zstd");
  const std::string json_path = args.GetOr("json", "");
  if (auto v = args.Get("checkpoint")) base.checkpoint = *v;
  QV2X_RETURN_IF_ERROR(args.Finish());
  QV2X_ASSIGN_OR_RETURN(std::vector<int> counts, AgentCounts(agents_list));
  std::vector<std::string> codecs = absl::StrSplit(codecs_list, ',', absl::SkipEmpty());
  BlockStopSignals();
  base.pace = "lockstep";
  base.ephemeral_ports = true;
  base.verbose = false;
  nlohmann::json runs = nlohmann::json::array();
  std::printf("%-7s %-7s %7s %9s %9s %8s %7s %9s %9s %9s %9s %7s\n", "agents", "codec", "frames",
              "B/msg", "p95 B", "xFP32", "H bits", "enc p50", "enc p95", "e2e p50", "e2e p95",
              "fps");
  for (int n : counts) {
    for (const std::string& codec : codecs) {
      LaunchOptions o = base;
      o.num_agents = n;
      o.max_cav = n;  // fuse every agent of the run, beyond the config's max_cav
      o.codec = codec;
      o.run_dir = absl::StrCat(".qv2x-run/bench-", n, "-", codec);
      QV2X_ASSIGN_OR_RETURN(std::unique_ptr<SceneLauncher> scene, SceneLauncher::Up(o));
      // Skip the first frames: start-up (first allocations, connections) is not the steady
      // state the table reports.
      QV2X_ASSIGN_OR_RETURN(nlohmann::json s, scene->Run(frames, false));
      s["agents"] = n;
      s["codec"] = codec;
      std::printf(
          "%-7d %-7s %7lld %9.0f %9.0f %8.1f %7.2f %8.1fms %8.1fms %8.1fms %8.1fms %7.2f\n", n,
          codec.c_str(), static_cast<long long>(s["frames_fused"].get<int64_t>()),
          s["bytes_per_message_mean"].get<double>(), s["bytes_per_message_p95"].get<double>(),
          s["compression_ratio"].get<double>(), s["index_entropy_bits_mean"].get<double>(),
          1e3 * s["encode_latency_p50_s"].get<double>(),
          1e3 * s["encode_latency_p95_s"].get<double>(), 1e3 * s["e2e_latency_p50_s"].get<double>(),
          1e3 * s["e2e_latency_p95_s"].get<double>(), s["fused_frames_per_second"].get<double>());
      std::fflush(stdout);
      runs.push_back(s);
    }
  }
  if (!json_path.empty()) {
    nlohmann::json out = {{"scene", base.scene_path}, {"frames_per_run", frames}, {"runs", runs}};
    QV2X_RETURN_IF_ERROR(WriteFileAtomic(json_path, out.dump(2) + "\n"));
  }
  return absl::OkStatus();
}

absl::Status RunSceneRecord(Args& args) {
  RecordOptions o;
  QV2X_ASSIGN_OR_RETURN(o.scene_path, args.Required("config"));
  QV2X_ASSIGN_OR_RETURN(o.out_dir, args.Required("out"));
  QV2X_ASSIGN_OR_RETURN(o.frames, args.IntOr("frames", 50));
  QV2X_ASSIGN_OR_RETURN(int64_t agents, args.IntOr("agents", 0));
  o.num_agents = static_cast<int>(agents);
  if (auto v = args.Get("precisions")) o.precisions = absl::StrSplit(*v, ',', absl::SkipEmpty());
  if (auto v = args.Get("codec")) o.codec = *v;
  if (auto v = args.Get("checkpoint")) o.checkpoint = *v;
  o.run_dir = args.GetOr("run-dir", "");
  QV2X_RETURN_IF_ERROR(args.Finish());
  BlockStopSignals();
  return RecordScene(o);
}

// This process's command line, as typed (for the record in the results).
std::string CommandLine() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> parts = absl::StrSplit(all, '\0', absl::SkipEmpty());
  for (std::string& p : parts) {
    if (p.find_first_of(" \t'\"") != std::string::npos) p = absl::StrCat("'", p, "'");
  }
  return absl::StrJoin(parts, " ");
}

absl::Status RunReplayBench(Args& args, const std::string& dir) {
  CapacityOptions o;
  o.recording_dir = dir;
  o.command = CommandLine();
  QV2X_ASSIGN_OR_RETURN(o.agent_counts, AgentCounts(args.GetOr("agents", "1,2,4,8,16,24,32")));
  QV2X_ASSIGN_OR_RETURN(o.rate_hz, args.DoubleOr("rate", 10));
  QV2X_ASSIGN_OR_RETURN(o.frames, args.IntOr("frames", 100));
  QV2X_ASSIGN_OR_RETURN(o.warmup, args.IntOr("warmup", 10));
  QV2X_ASSIGN_OR_RETURN(double bound_ms, args.DoubleOr("latency-bound-ms", 100));
  QV2X_ASSIGN_OR_RETURN(int64_t backlog, args.IntOr("max-fuse-backlog", 0));
  if (auto v = args.Get("precisions")) o.precisions = absl::StrSplit(*v, ',', absl::SkipEmpty());
  o.json_path = args.GetOr("json", "");
  o.plot_path = args.GetOr("plot", "");
  o.note = args.GetOr("note", "");
  o.fusion_address = args.GetOr("fusion", "");
  o.write_scene = args.GetOr("write-scene", "");
  o.run_dir = args.GetOr("run-dir", "");
  QV2X_RETURN_IF_ERROR(args.Finish());
  if (!(o.rate_hz > 0) || o.frames < 1 || o.warmup < 0 || !(bound_ms > 0) || backlog < 0) {
    return absl::InvalidArgumentError(
        "--rate and --latency-bound-ms must be > 0, --frames >= 1, --warmup and "
        "--max-fuse-backlog >= 0");
  }
  o.latency_bound_s = bound_ms / 1e3;
  o.max_fuse_backlog = static_cast<int>(backlog);
  BlockStopSignals();
  return RunFusionCapacity(o);
}

absl::Status RunScene(Args& args) {
  const std::string sub = args.positional().empty() ? "" : args.positional()[0];
  if (sub == "record") return RunSceneRecord(args);
  if (sub == "bench") {
    if (auto dir = args.Get("replay")) return RunReplayBench(args, *dir);
    return RunSceneBench(args);
  }
  return RunSceneUp(args);
}

const Registration kScene({"scene",
                           "run a scene's services locally (up), benchmark them (bench), record "
                           "agent messages (record) and replay them into fusion (bench --replay)",
                           absl::StrCat(kUpUsage, "\n\n", kBenchUsage, "\n\n", kRecordUsage, "\n\n",
                                        kReplayUsage),
                           RunScene});

}  // namespace
}  // namespace qv2x::cli
