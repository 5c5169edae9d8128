#include "tools/qv2x/client/scene_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/common/status_macros.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "qv2x/v1/features.grpc.pb.h"
#include "services/agent_identity.h"
#include "services/tls_credentials.h"
#include "tools/qv2x/client/client_security.h"
#include "tools/qv2x/client/scene_summary.h"

namespace qv2x::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::string SelfDir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

std::string Addr(int port) { return absl::StrCat("127.0.0.1:", port); }

absl::StatusOr<std::pair<int, int>> ReadPortFile(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return absl::NotFoundError(path);
  std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
  int g = 0, m = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &g) || !absl::SimpleAtoi(parts[1], &m)) {
    return absl::NotFoundError(path);
  }
  return std::make_pair(g, m);
}

bool Serving(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  return stub->Check(&ctx, req, &resp).ok() &&
         resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

void Say(bool verbose, const std::string& line) {
  if (verbose) std::fprintf(stderr, "scene: %s\n", line.c_str());
}

std::string Absolute(const std::string& path) {
  return path.empty() ? path : std::filesystem::absolute(path).lexically_normal().string();
}

// The files of `name` (e.g. "fusion", "agent-1", "client") in a make-certs.sh folder.
std::string CertFile(const std::string& dir, const std::string& name, const char* ext) {
  return absl::StrCat(dir, "/", name, ext);
}

// Fusion and every agent play the same dataset back (services/playback_flags.h).
std::vector<std::string> DatasetArgs(const sim::ClusterDataset& d) {
  if (d.path.empty()) return {};
  return {"--dataset=" + d.path, "--dataset_mode=" + d.mode, "--missing_agent=" + d.missing_agent};
}

}  // namespace

absl::StatusOr<std::unique_ptr<SceneLauncher>> SceneLauncher::Up(const LaunchOptions& options) {
  std::unique_ptr<SceneLauncher> l(new SceneLauncher());
  l->options_ = options;
  QV2X_ASSIGN_OR_RETURN(l->scene_, sim::LoadSceneConfig(options.scene_path));
  QV2X_ASSIGN_OR_RETURN(l->cluster_, sim::LoadClusterConfig(options.scene_path));
  sim::ClusterConfig& c = l->cluster_;
  if (options.codec) c.codec = *options.codec;
  if (options.pace) c.pace = *options.pace;
  if (options.precision) c.precision = *options.precision;
  if (options.checkpoint) c.checkpoint = *options.checkpoint;
  if (options.with_training) c.trainer.enabled = c.quantizer.enabled = true;
  if (options.artifacts) c.trainer.artifacts = c.quantizer.artifacts = *options.artifacts;
  if (!c.checkpoint.empty() && !std::filesystem::exists(c.checkpoint)) {
    Say(options.verbose, absl::StrCat(c.checkpoint,
                                      " not found: every service runs the seeded "
                                      "initial (untrained) model"));
    c.checkpoint.clear();
    c.int8_artifact.clear();  // quantized from that checkpoint: its codebook would differ
  }
  if (!c.int8_artifact.empty() && !std::filesystem::exists(c.int8_artifact)) {
    Say(options.verbose, absl::StrCat(c.int8_artifact, " not found: agents run FP32 only"));
    c.int8_artifact.clear();
  }
  if (c.precision == "int8" && c.int8_artifact.empty()) {
    return absl::FailedPreconditionError("precision int8 needs an INT8 artifact");
  }
  if (options.tls_dir) c.security.tls_dir = *options.tls_dir;
  if (options.mutual_tls) c.security.mutual_tls = *options.mutual_tls;
  if (options.auth_token_file) c.security.auth_token_file = *options.auth_token_file;
  if (c.security.mutual_tls && c.security.tls_dir.empty()) {
    return absl::InvalidArgumentError("mutual TLS needs a TLS folder (security.tls_dir)");
  }
  // Absolute, so that the services and endpoints.json work from any folder.
  const SecurityFiles& client = l->endpoints_.security = ClientSecurityFiles(c.security);
  c.security.tls_dir = Absolute(c.security.tls_dir);
  c.security.auth_token_file = client.token_file;
  // The launcher's own files, checked before any service starts.
  QV2X_RETURN_IF_ERROR(
      services::ClientSecurity::Load({client.cert, client.key, client.ca}, client.token_file)
          .status());
  const int n =
      options.num_agents > 0 ? options.num_agents : static_cast<int>(l->scene_.agents.size());
  if (n > static_cast<int>(l->scene_.agents.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("--agents ", n, ": scene ", l->scene_.name, " has ", l->scene_.agents.size()));
  }
  // The ego first, then the others in scene order.
  l->agent_ids_.push_back(l->scene_.ego_id);
  for (const auto& a : l->scene_.agents) {
    if (static_cast<int>(l->agent_ids_.size()) == n) break;
    if (a.id != l->scene_.ego_id) l->agent_ids_.push_back(a.id);
  }
  l->run_dir_ = options.run_dir.empty() ? DefaultRunDir(l->scene_.name) : options.run_dir;
  std::filesystem::create_directories(l->run_dir_);
  for (const auto& e : std::filesystem::directory_iterator(l->run_dir_)) {
    if (e.path().extension() == ".port") std::filesystem::remove(e.path());
  }
  l->bin_dir_ = SelfDir();
  const bool eph = options.ephemeral_ports;
  auto port = [&](int p) { return eph ? 0 : p; };

  // Fusion first: agents need its address.
  Child fusion;
  fusion.name = "fusion";
  fusion.port_file = l->run_dir_ + "/fusion.port";
  fusion.log = l->run_dir_ + "/fusion.log";
  fusion.argv = {l->bin_dir_ + "/qv2x-fusion",
                 "--scene=" + options.scene_path,
                 "--config=" + c.model_config,
                 "--checkpoint=" + c.checkpoint,
                 "--int8_artifact=" + c.int8_artifact,
                 "--listen=" + Addr(port(c.fusion.grpc_port)),
                 "--metrics=" + Addr(port(c.fusion.metrics_port)),
                 absl::StrCat("--deadline_ms=", c.fusion_deadline_ms),
                 absl::StrCat("--ap_window=", c.ap_window_frames),
                 absl::StrCat("--threads=", c.fusion_threads),
                 "--agents=" + absl::StrJoin(l->agent_ids_, ","),
                 absl::StrCat("--max_cav=", options.max_cav),
                 "--artifacts=" + c.trainer.artifacts,
                 "--port_file=" + fusion.port_file};
  for (std::string& a : l->SecurityArgs("fusion")) fusion.argv.push_back(std::move(a));
  for (const std::string& f : options.fusion_flags) fusion.argv.push_back(f);
  if (!c.zstd_dictionary.empty()) fusion.argv.push_back("--zstd_dictionary=" + c.zstd_dictionary);
  for (std::string& a : DatasetArgs(c.dataset)) fusion.argv.push_back(std::move(a));
  l->children_.push_back(std::move(fusion));
  QV2X_RETURN_IF_ERROR(l->Spawn(l->children_[0]));
  QV2X_RETURN_IF_ERROR(l->WaitServing(l->children_[0], &l->endpoints_.fusion));
  l->endpoints_.scene = l->scene_.name;
  Say(options.verbose, absl::StrCat("fusion serving on ", l->endpoints_.fusion.grpc(), ", metrics ",
                                    l->endpoints_.fusion.metrics()));

  const int64_t epoch_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  const std::string agents_dial = options.agent_fusion_address
                                      ? options.agent_fusion_address(l->endpoints_.fusion.grpc())
                                      : l->endpoints_.fusion.grpc();
  for (size_t k = 0; options.start_agents && k < l->scene_.agents.size(); ++k) {
    const int id = l->scene_.agents[k].id;
    if (std::find(l->agent_ids_.begin(), l->agent_ids_.end(), id) == l->agent_ids_.end()) continue;
    Child a;
    a.name = absl::StrCat("agent ", id);
    a.port_file = absl::StrCat(l->run_dir_, "/agent_", id, ".port");
    a.log = absl::StrCat(l->run_dir_, "/agent_", id, ".log");
    a.argv = {l->bin_dir_ + "/qv2x-agent",
              "--scene=" + options.scene_path,
              absl::StrCat("--agent_id=", id),
              "--config=" + c.model_config,
              "--checkpoint=" + c.checkpoint,
              "--int8_artifact=" + c.int8_artifact,
              "--precision=" + c.precision,
              "--fusion=" + agents_dial,
              "--listen=" + Addr(port(c.AgentPorts(k).grpc_port)),
              "--metrics=" + Addr(port(c.AgentPorts(k).metrics_port)),
              "--codec=" + c.codec,
              "--pace=" + c.pace,
              absl::StrCat("--epoch_ms=", epoch_ms),
              absl::StrCat("--threads=", c.agent_threads),
              "--artifacts=" + c.trainer.artifacts,
              "--port_file=" + a.port_file};
    for (std::string& f : l->SecurityArgs(services::AgentCertificateName(id))) {
      a.argv.push_back(std::move(f));
    }
    if (!c.security.tls_dir.empty()) {
      a.argv.push_back("--fusion_tls_ca=" + CertFile(c.security.tls_dir, "ca", ".crt"));
    }
    if (!c.zstd_dictionary.empty()) a.argv.push_back("--zstd_dictionary=" + c.zstd_dictionary);
    for (std::string& f : DatasetArgs(c.dataset)) a.argv.push_back(std::move(f));
    if (c.sparse_min_span_m >= 0) {
      a.argv.push_back(absl::StrCat("--sparse_min_span_m=", c.sparse_min_span_m));
      a.argv.push_back(absl::StrCat("--sparse_dilation=", c.sparse_dilation_cells));
    }
    l->children_.push_back(std::move(a));
    QV2X_RETURN_IF_ERROR(l->Spawn(l->children_.back()));
  }
  for (const auto& [name, svc] : {std::make_pair(std::string("trainer"), c.trainer),
                                  std::make_pair(std::string("quantizer"), c.quantizer)}) {
    if (!svc.enabled) continue;
    Child s;
    s.name = name;
    s.port_file = absl::StrCat(l->run_dir_, "/", name, ".port");
    s.log = absl::StrCat(l->run_dir_, "/", name, ".log");
    s.argv = {absl::StrCat(l->bin_dir_, "/qv2x-", name),
              "--listen=" + Addr(port(svc.ports.grpc_port)),
              "--metrics=" + Addr(port(svc.ports.metrics_port)), "--artifacts=" + svc.artifacts,
              "--port_file=" + s.port_file};
    for (std::string& f : l->SecurityArgs(name)) s.argv.push_back(std::move(f));
    if (!std::filesystem::exists(s.argv[0])) {
      return absl::FailedPreconditionError(
          absl::StrCat("the scene enables the ", name, " but ", s.argv[0], " is not built"));
    }
    l->children_.push_back(std::move(s));
    QV2X_RETURN_IF_ERROR(l->Spawn(l->children_.back()));
  }
  // Every agent (and optional service) must report SERVING.
  for (size_t i = 1; i < l->children_.size(); ++i) {
    Child& ch = l->children_[i];
    Endpoint e;
    QV2X_RETURN_IF_ERROR(l->WaitServing(ch, &e));
    if (ch.name.rfind("agent ", 0) == 0) {
      l->endpoints_.agents[std::stoi(ch.name.substr(6))] = e;
    } else {
      l->endpoints_.others[ch.name] = e;
    }
    Say(options.verbose,
        absl::StrCat(ch.name, " serving on ", e.grpc(), ", metrics ", e.metrics()));
  }
  QV2X_RETURN_IF_ERROR(WriteEndpoints(l->run_dir_ + "/endpoints.json", l->endpoints_));
  Say(options.verbose, absl::StrCat("scene ", l->scene_.name, " up: ", l->agent_ids_.size(),
                                    " agents; endpoints in ", l->run_dir_,
                                    "/endpoints.json, logs in ", l->run_dir_));
  return l;
}

SceneLauncher::~SceneLauncher() { Down(); }

std::vector<std::string> SceneLauncher::SecurityArgs(const std::string& cert_name) const {
  const sim::ClusterSecurity& s = cluster_.security;
  std::vector<std::string> args;
  if (!s.tls_dir.empty()) {
    args.push_back("--tls_cert=" + CertFile(s.tls_dir, cert_name, ".crt"));
    args.push_back("--tls_key=" + CertFile(s.tls_dir, cert_name, ".key"));
    if (s.mutual_tls) args.push_back("--tls_ca=" + CertFile(s.tls_dir, "ca", ".crt"));
  }
  if (!s.auth_token_file.empty()) args.push_back("--auth_token_file=" + s.auth_token_file);
  return args;
}

std::shared_ptr<grpc::Channel> SceneLauncher::Channel(const std::string& address) const {
  // The files were checked in Up().
  return *Dial(address, endpoints_.security);
}

absl::Status SceneLauncher::Spawn(Child& c) {
  std::filesystem::remove(c.port_file);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    // Own process group (a terminal's Ctrl-C reaches the launcher, which stops the
    // services in order), SIGTERM if the launcher dies, default signal mask.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    const int fd = ::open(c.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const std::string threads = absl::StrCat(cluster_.agent_threads);
    ::setenv("OMP_NUM_THREADS", threads.c_str(), 0);
    ::setenv("BLIS_NUM_THREADS", threads.c_str(), 0);
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    // A caching allocator: large per-frame temporaries otherwise cost page faults.
    constexpr char kJemalloc[] = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
    if (::access(kJemalloc, R_OK) == 0) ::setenv("LD_PRELOAD", kJemalloc, 0);
    std::vector<char*> args;
    for (const auto& a : c.argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  c.pid = pid;
  c.running = true;
  return absl::OkStatus();
}

absl::Status SceneLauncher::WaitServing(Child& c, Endpoint* where) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(options_.startup_timeout_s);
  while (Clock::now() < deadline) {
    int st = 0;
    if (::waitpid(c.pid, &st, WNOHANG) == c.pid) {
      c.running = false;
      std::ifstream in(c.log);
      std::string line, last;
      while (std::getline(in, line)) {
        if (!line.empty()) last = line;
      }
      return absl::UnavailableError(
          absl::StrCat(c.name, " exited during start-up: ", last, " (log: ", c.log, ")"));
    }
    if (auto ports = ReadPortFile(c.port_file); ports.ok()) {
      where->grpc_port = ports->first;
      where->metrics_port = ports->second;
      if (Serving(Channel(where->grpc()))) return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(c.name, " did not report SERVING within ",
                                                  options_.startup_timeout_s, " s (log: ", c.log,
                                                  ")"));
}

void SceneLauncher::Reap(bool restart) {
  for (Child& c : children_) {
    if (!c.running) continue;
    int st = 0;
    if (::waitpid(c.pid, &st, WNOHANG) != c.pid) continue;
    c.running = false;
    const std::string how = WIFEXITED(st) ? absl::StrCat("exited with ", WEXITSTATUS(st))
                                          : absl::StrCat("killed by signal ", WTERMSIG(st));
    if (!restart || c.restarts >= 5) {
      Say(true, absl::StrCat(c.name, " ", how, "; not restarting (log: ", c.log, ")"));
      continue;
    }
    ++c.restarts;
    // Same ports as before, so the others and endpoints.json stay valid.
    const Endpoint* e = c.name == "fusion" ? &endpoints_.fusion : nullptr;
    if (c.name.rfind("agent ", 0) == 0) e = &endpoints_.agents[std::stoi(c.name.substr(6))];
    if (e != nullptr) {
      for (std::string& a : c.argv) {
        if (a.rfind("--listen=", 0) == 0) a = "--listen=" + e->grpc();
        if (a.rfind("--metrics=", 0) == 0) a = "--metrics=" + Addr(e->metrics_port);
      }
    }
    Say(true, absl::StrCat(c.name, " ", how, "; restarting (", c.restarts, "/5)"));
    Spawn(c).IgnoreError();
  }
}

absl::StatusOr<nlohmann::json> SceneLauncher::Run(int64_t frames, bool print_frames) {
  SceneSummary summary;
  std::mutex mu;
  std::atomic<bool> done{false}, stopping{false};
  auto stub = v1::Fusion::NewStub(Channel(endpoints_.fusion.grpc()));
  std::mutex ctx_mu;
  grpc::ClientContext* live_ctx = nullptr;
  const auto t0 = Clock::now();
  std::thread watcher([&] {
    // Re-subscribes when the fusion service restarts.
    while (!stopping) {
      grpc::ClientContext ctx;
      {
        std::lock_guard<std::mutex> lock(ctx_mu);
        live_ctx = &ctx;
      }
      auto reader = stub->WatchDetections(&ctx, v1::WatchRequest());
      v1::DetectionFrame f;
      while (reader->Read(&f)) {
        const double at = std::chrono::duration<double>(Clock::now() - t0).count();
        std::lock_guard<std::mutex> lock(mu);
        if (frames > 0 && summary.frames() >= frames) continue;
        summary.Add(f, at);
        if (print_frames) {
          std::printf("frame %6llu  agents %d  boxes %3d  e2e %6.1f ms\n",
                      static_cast<unsigned long long>(f.frame_id()), f.agents_size(),
                      f.boxes_size(), 1e3 * f.e2e_latency_seconds());
          std::fflush(stdout);
        }
        if (frames > 0 && summary.frames() >= frames) done = true;
      }
      reader->Finish().IgnoreError();
      {
        std::lock_guard<std::mutex> lock(ctx_mu);
        live_ctx = nullptr;
      }
      if (!stopping) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  const timespec tick{0, 200 * 1000 * 1000};
  while (!done) {
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      Say(true, sig == SIGINT ? "SIGINT: stopping the scene" : "SIGTERM: stopping the scene");
      break;
    }
    Reap(/*restart=*/true);
  }
  stopping = true;
  {
    std::lock_guard<std::mutex> lock(ctx_mu);
    if (live_ctx != nullptr) live_ctx->TryCancel();
  }
  Down();
  watcher.join();
  std::lock_guard<std::mutex> lock(mu);
  return summary.ToJson(static_cast<int>(agent_ids_.size()));
}

void SceneLauncher::Down() {
  if (down_) return;
  down_ = true;
  // Agents first, so the fusion service does not count them as lost while stopping.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = children_.size(); i-- > 0;) {
      Child& c = children_[i];
      if (!c.running || (pass == 0) == (i == 0)) continue;
      ::kill(c.pid, SIGTERM);
    }
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    for (size_t i = 0; i < children_.size(); ++i) {
      Child& c = children_[i];
      if (!c.running || (pass == 0) == (i == 0)) continue;
      while (true) {
        int st = 0;
        if (::waitpid(c.pid, &st, WNOHANG) == c.pid) break;
        if (Clock::now() > deadline) {
          Say(true, absl::StrCat(c.name, " ignored SIGTERM; killing it"));
          ::kill(c.pid, SIGKILL);
          ::waitpid(c.pid, &st, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      c.running = false;
    }
  }
  std::error_code ec;
  std::filesystem::remove(run_dir_ + "/endpoints.json", ec);
}

}  // namespace qv2x::cli
