#include "tools/qv2x/client/fusion_capacity.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tools/qv2x/client/feature_recording.h"
#include "tools/qv2x/client/replay_scene.h"
#include "tools/qv2x/client/scene_launcher.h"
#include "tools/qv2x/client/scene_replay.h"
#include "yaml-cpp/yaml.h"

extern char** environ;

namespace qv2x::cli {
namespace {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  return absl::StrCat(model, ", ", std::thread::hardware_concurrency(), " CPUs");
}

void PrintHeader() {
  std::printf("%-6s %-5s %6s %6s %7s %7s %6s %9s %9s %9s %9s %9s  %s\n", "agents", "prec", "frames",
              "fused", "dropped", "partial", "fps", "e2e p50", "e2e p95", "e2e p99", "e2e max",
              "fuse p50", "sustained");
}

void PrintRow(const nlohmann::json& r) {
  auto ms = [&](const char* k) { return 1e3 * r[k].get<double>(); };
  std::printf(
      "%-6d %-5s %6lld %6lld %7lld %7lld %6.2f %7.1fms %7.1fms %7.1fms %7.1fms %7.1fms  %s\n",
      r["agents"].get<int>(), r["precision"].get<std::string>().c_str(),
      static_cast<long long>(r["frames_sent"].get<int64_t>()),
      static_cast<long long>(r["frames_fused"].get<int64_t>()),
      static_cast<long long>(r["frames_dropped"].get<int64_t>()),
      static_cast<long long>(r["frames_partial"].get<int64_t>()),
      r["fused_frames_per_second"].get<double>(), ms("e2e_latency_p50_s"), ms("e2e_latency_p95_s"),
      ms("e2e_latency_p99_s"), ms("e2e_latency_max_s"), ms("fuse_p50_s"),
      r["sustained"].get<bool>() ? "yes" : "no");
  std::fflush(stdout);
}

// Per precision: the largest agent count that sustained the rate, every smaller count tested
// having sustained it too (0: not even the smallest).
nlohmann::json Capacity(const nlohmann::json& runs, const std::vector<std::string>& precisions) {
  nlohmann::json out = nlohmann::json::object();
  for (const std::string& p : precisions) {
    std::map<int, bool> ok;
    for (const auto& r : runs) {
      if (r["precision"] == p) ok[r["agents"].get<int>()] = r["sustained"].get<bool>();
    }
    int best = 0;
    for (const auto& [n, sustained] : ok) {
      if (!sustained) break;
      best = n;
    }
    out[p] = best;
  }
  return out;
}

absl::Status Plot(const nlohmann::json& result, const std::string& png, const std::string& dir) {
  const std::string dat = dir + "/fusion-capacity.dat", gp = dir + "/fusion-capacity.gp";
  std::map<int, std::map<std::string, nlohmann::json>> by_n;
  for (const auto& r : result["runs"]) by_n[r["agents"].get<int>()][r["precision"]] = r;
  std::string rows = "# agents p99_fp32_ms p99_int8_ms fps_fp32 fps_int8\n";
  for (const auto& entry : by_n) {
    // C++17 lambdas cannot capture structured bindings (clang refuses it).
    const int n = entry.first;
    const std::map<std::string, nlohmann::json>& runs = entry.second;
    auto get = [&](const char* p, const char* k, double scale) {
      auto it = runs.find(p);
      return it == runs.end() ? std::string("NaN")
                              : absl::StrCat(scale * it->second[k].get<double>());
    };
    absl::StrAppend(&rows, n, " ", get("fp32", "e2e_latency_p99_s", 1e3), " ",
                    get("int8", "e2e_latency_p99_s", 1e3), " ",
                    get("fp32", "fused_frames_per_second", 1), " ",
                    get("int8", "fused_frames_per_second", 1), "\n");
  }
  QV2X_RETURN_IF_ERROR(WriteFileAtomic(dat, rows));
  std::string xtics;
  for (const auto& [n, runs] : by_n) absl::StrAppend(&xtics, xtics.empty() ? "" : ", ", n);
  const double bound_ms = 1e3 * result["latency_bound_s"].get<double>();
  const std::string script = absl::StrCat(
      "set terminal pngcairo size 960,620 font 'sans,11'\n", "set output '", png, "'\n",
      "set title \"One fusion service, N replayed agents at ", result["rate_hz"].get<double>(),
      " Hz (", result["cpu"].get<std::string>(), ")\\n", result["note"].get<std::string>(),
      "\" noenhanced font ',10'\n", "set xlabel 'agents (each one message per frame)'\n",
      "set ylabel 'end-to-end latency p99 (ms)'\n", "set y2label 'fused frames/s'\n",
      "set logscale x 2\nset logscale y\nset ytics nomirror\nset y2tics\nset grid\n", "set xtics (",
      xtics, ")\nset y2range [0:", 1.2 * result["rate_hz"].get<double>(), "]\n",
      "set key outside below horizontal\n", "set arrow from graph 0, first ", bound_ms,
      " to graph 1, first ", bound_ms, " nohead dt 2 lc rgb '#888888'\n", "set label 'p99 bound ",
      bound_ms, " ms' at graph 0.02, first ", bound_ms * 1.12, " tc rgb '#666666'\n", "plot '", dat,
      "' u 1:2 w lp pt 7 lc rgb '#1f77b4' t 'p99, FP32 ego half and encoders', '", dat,
      "' u 1:3 w lp pt 5 lc rgb '#d62728' t 'p99, INT8', '", dat,
      "' u 1:4 axes x1y2 w lp dt 2 pt 6 lc rgb '#1f77b4' t 'fused frames/s, FP32 (right)', '", dat,
      "' u 1:5 axes x1y2 w lp dt 2 pt 4 lc rgb '#d62728' t 'fused frames/s, INT8 (right)'\n");
  QV2X_RETURN_IF_ERROR(WriteFileAtomic(gp, script));
  pid_t pid = 0;
  std::vector<char*> argv = {const_cast<char*>("gnuplot"), const_cast<char*>(gp.c_str()), nullptr};
  if (posix_spawnp(&pid, "gnuplot", nullptr, nullptr, argv.data(), environ) != 0) {
    return absl::FailedPreconditionError("gnuplot is not installed (apt-get install gnuplot-nox)");
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    return absl::InternalError(absl::StrCat("gnuplot failed on ", gp));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunFusionCapacity(const CapacityOptions& o) {
  if (o.agent_counts.empty()) return absl::InvalidArgumentError("--agents: no agent count");
  if ((!o.fusion_address.empty() || !o.write_scene.empty()) && o.agent_counts.size() != 1) {
    return absl::InvalidArgumentError("--fusion and --write-scene take one agent count");
  }
  std::vector<std::string> precisions = o.precisions;
  if (precisions.empty()) {
    for (const char* p : {"fp32", "int8"}) {
      if (std::filesystem::exists(absl::StrCat(o.recording_dir, "/", p, ".qv2xrec"))) {
        precisions.push_back(p);
      }
    }
    if (precisions.empty()) {
      return absl::NotFoundError(absl::StrCat(o.recording_dir,
                                              " holds no recording (fp32.qv2xrec, int8.qv2xrec: "
                                              "`qv2x scene record`)"));
    }
  }
  std::map<std::string, Recording> recordings;
  for (const std::string& p : precisions) {
    if (p != "fp32" && p != "int8") {
      return absl::InvalidArgumentError(absl::StrCat("--precisions: \"", p, "\": fp32 or int8"));
    }
    QV2X_ASSIGN_OR_RETURN(recordings[p],
                          ReadRecording(absl::StrCat(o.recording_dir, "/", p, ".qv2xrec")));
    const RecordingHeader& h = recordings[p].header;
    const RecordingHeader& first = recordings.begin()->second.header;
    if (h.precision != p || h.scene != first.scene || h.codebook_digest != first.codebook_digest) {
      return absl::InvalidArgumentError(
          absl::StrCat(o.recording_dir, ": ", p, ".qv2xrec (", h.precision, ", scene ", h.scene,
                       ", codebook ", h.codebook_digest, ") does not match the others (scene ",
                       first.scene, ", codebook ", first.codebook_digest, ")"));
    }
  }
  const RecordingHeader& h = recordings.begin()->second.header;
  QV2X_ASSIGN_OR_RETURN(std::string scene_yaml,
                        ReadFile(absl::StrCat(o.recording_dir, "/", h.scene_file)));
  // The replay plays frames where fusion takes every recorded agent (its comm_range).
  double comm_range = 0;
  try {
    comm_range = YAML::LoadFile(h.model_config)["comm_range"].as<double>();
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(h.model_config, ": comm_range: ", e.what()));
  }
  std::map<std::string, RecordedMessages> messages;
  std::map<std::string, std::vector<uint64_t>> cycles;
  for (const auto& [p, r] : recordings) {
    QV2X_ASSIGN_OR_RETURN(messages[p], IndexRecording(r));
    QV2X_ASSIGN_OR_RETURN(cycles[p], ReplayFrameCycle(r.header, messages[p], comm_range));
  }
  const std::string run_dir =
      o.run_dir.empty() ? absl::StrCat(".qv2x-run/replay-", h.scene) : o.run_dir;

  nlohmann::json result = {{"command", o.command},
                           {"cpu", CpuModel()},
                           {"note", o.note},
                           {"recording",
                            {{"dir", o.recording_dir},
                             {"scene", h.scene},
                             {"preset", h.preset},
                             {"model_config", h.model_config},
                             {"checkpoint", h.checkpoint},
                             {"int8_artifact", h.int8_artifact},
                             {"codebook_digest", h.codebook_digest},
                             {"codec", h.codec},
                             {"agents", h.agents},
                             {"frames", h.frames}}},
                           {"rate_hz", o.rate_hz},
                           {"warmup_frames", o.warmup},
                           {"frames_per_run", o.frames},
                           {"latency_bound_s", o.latency_bound_s},
                           {"clone_lag_frames", kCloneLagFrames},
                           {"comm_range_m", comm_range},
                           {"frame_cycle", cycles.begin()->second},
                           {"runs", nlohmann::json::array()}};
  if (o.write_scene.empty()) PrintHeader();
  for (int n : o.agent_counts) {
    QV2X_ASSIGN_OR_RETURN(std::vector<ReplayAgent> agents, ReplayAgents(h, scene_yaml, n));
    QV2X_ASSIGN_OR_RETURN(std::string scene, ReplaySceneYaml(scene_yaml, agents, o.rate_hz));
    if (!o.write_scene.empty()) return WriteFileAtomic(o.write_scene, scene);
    const std::string dir = absl::StrCat(run_dir, "/n", n);
    QV2X_RETURN_IF_ERROR(WriteFileAtomic(dir + "/scene.yaml", scene));
    std::unique_ptr<SceneLauncher> fusion;
    std::string address = o.fusion_address;
    if (address.empty()) {
      LaunchOptions l;
      l.scene_path = dir + "/scene.yaml";
      l.run_dir = dir;
      l.ephemeral_ports = true;
      l.start_agents = false;
      l.num_agents = n;
      l.max_cav = n;  // fuse every agent: the capacity of fusing N, not of max_cav
      l.verbose = false;
      l.fusion_flags = {"--score=false"};  // clones have no ground truth of their own
      if (o.max_fuse_backlog > 0) {
        l.fusion_flags.push_back(absl::StrCat("--max_fuse_backlog=", o.max_fuse_backlog));
      }
      QV2X_ASSIGN_OR_RETURN(fusion, SceneLauncher::Up(l));
      address = fusion->endpoints().fusion.grpc();
    }
    QV2X_ASSIGN_OR_RETURN(std::unique_ptr<ReplayStreams> streams,
                          ReplayStreams::Open(address, agents));
    uint64_t next_frame = 0;
    for (const std::string& p : precisions) {
      QV2X_RETURN_IF_ERROR(streams->SetFusionPrecision(p));
      ReplayPhase phase;
      phase.precision = p;
      phase.messages = &messages.at(p);
      phase.cycle = cycles.at(p);
      phase.first_frame = next_frame;
      phase.warmup = o.warmup;
      phase.frames = o.frames;
      phase.rate_hz = o.rate_hz;
      QV2X_ASSIGN_OR_RETURN(nlohmann::json r, streams->Run(phase, o.latency_bound_s));
      next_frame += static_cast<uint64_t>(o.warmup + o.frames);
      PrintRow(r);
      result["runs"].push_back(std::move(r));
    }
    result["max_agents_sustained"] = Capacity(result["runs"], precisions);
    // Written after every count, so that an interrupted sweep keeps what it measured.
    if (!o.json_path.empty()) {
      QV2X_RETURN_IF_ERROR(WriteFileAtomic(o.json_path, result.dump(2) + "\n"));
    }
  }
  std::string capacity;
  for (const auto& [p, n] : result["max_agents_sustained"].items()) {
    absl::StrAppend(&capacity, capacity.empty() ? "" : ", ", p, " ", n.get<int>());
  }
  std::printf("largest agent count sustaining %.4g Hz with e2e p99 < %.0f ms: %s\n", o.rate_hz,
              1e3 * o.latency_bound_s, capacity.c_str());
  if (!o.plot_path.empty()) QV2X_RETURN_IF_ERROR(Plot(result, o.plot_path, run_dir));
  return absl::OkStatus();
}

}  // namespace qv2x::cli
