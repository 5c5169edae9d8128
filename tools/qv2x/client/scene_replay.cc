#include "tools/qv2x/client/scene_replay.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/common/percentile.h"
#include "core/common/status_macros.h"
#include "core/sim/scene_clock.h"
#include "services/tls_credentials.h"

namespace qv2x::cli {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int kMaxMessageBytes = 16 << 20;  // the fusion service's own gRPC cap

double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double one = -1;
  in >> one;
  return one;
}

}  // namespace

struct ReplayStreams::Stream {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::FeatureMessage, v1::FeatureStreamReply>> rw;
  std::thread reader;
};

absl::StatusOr<std::unique_ptr<ReplayStreams>> ReplayStreams::Open(
    const std::string& fusion_address, std::vector<ReplayAgent> agents) {
  std::unique_ptr<ReplayStreams> r(new ReplayStreams());
  r->agents_ = std::move(agents);
  r->channel_ = grpc::CreateCustomChannel(fusion_address, grpc::InsecureChannelCredentials(),
                                          services::ClientChannelArguments(kMaxMessageBytes));
  if (!r->channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30))) {
    return absl::UnavailableError(absl::StrCat("no fusion service at ", fusion_address));
  }
  r->stub_ = v1::Fusion::NewStub(r->channel_);
  r->watcher_ = std::thread([p = r.get()] { p->Watch(); });
  for (const ReplayAgent& a : r->agents_) {
    auto s = std::make_unique<Stream>();
    s->rw = r->stub_->StreamFeatures(&s->ctx);
    s->reader = std::thread([p = r.get(), rw = s->rw.get(), id = a.id] {
      v1::FeatureStreamReply reply;
      while (rw->Read(&reply)) {
        std::lock_guard<std::mutex> lock(p->mu_);
        if (reply.has_ack() && !reply.ack().accepted()) {
          const int64_t n = ++p->rejected_[v1::RejectReason_Name(reply.ack().reason())];
          if (n <= 3) {
            std::fprintf(stderr, "replay: fusion refused agent %d frame %llu: %s\n", id,
                         static_cast<unsigned long long>(reply.ack().frame_id()),
                         reply.ack().detail().c_str());
          }
        } else if (reply.kind_case() == v1::FeatureStreamReply::kFrameClosed) {
          p->closed_ = std::max(p->closed_.value_or(0), reply.frame_closed());
          p->cv_.notify_all();
        }
      }
      std::lock_guard<std::mutex> lock(p->mu_);
      if (!p->stopping_ && p->broken_.empty()) {
        p->broken_ = absl::StrCat("agent ", id, "'s stream to fusion ended");
      }
      p->cv_.notify_all();
    });
    r->streams_.push_back(std::move(s));
  }
  return r;
}

ReplayStreams::~ReplayStreams() {
  stopping_ = true;
  for (auto& s : streams_) {
    s->rw->WritesDone();
    s->ctx.TryCancel();
    s->reader.join();
    s->rw->Finish().IgnoreError();
  }
  watch_ctx_.TryCancel();
  if (watcher_.joinable()) watcher_.join();
}

void ReplayStreams::Watch() {
  auto reader = stub_->WatchDetections(&watch_ctx_, v1::WatchRequest());
  v1::DetectionFrame f;
  while (reader->Read(&f)) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back({f, SteadyClock::now()});
    cv_.notify_all();
  }
  reader->Finish().IgnoreError();
  std::lock_guard<std::mutex> lock(mu_);
  if (!stopping_ && broken_.empty()) broken_ = "the fusion service's detection stream ended";
  cv_.notify_all();
}

absl::StatusOr<v1::FusionStatus> ReplayStreams::Status() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::FusionStatus status;
  grpc::Status st = stub_->GetStatus(&ctx, v1::FusionStatusRequest(), &status);
  if (!st.ok())
    return absl::UnavailableError(absl::StrCat("fusion GetStatus: ", st.error_message()));
  return status;
}

absl::Status ReplayStreams::SetFusionPrecision(const std::string& precision) {
  v1::FusionPrecisionRequest req;
  req.set_precision(precision == "int8" ? v1::PRECISION_INT8 : v1::PRECISION_FP32);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::FusionStatus status;
  grpc::Status st = stub_->SetPrecision(&ctx, req, &status);
  if (!st.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("fusion SetPrecision ", precision, ": ", st.error_message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> ReplayStreams::Run(const ReplayPhase& phase,
                                                  double latency_bound_s) {
  if (phase.frames < 1 || phase.warmup < 0 || !(phase.rate_hz > 0) || phase.cycle.empty()) {
    return absl::InvalidArgumentError("a replay needs frames >= 1, warmup >= 0 and a rate > 0");
  }
  const RecordedMessages& recorded = *phase.messages;
  const uint64_t total = static_cast<uint64_t>(phase.warmup + phase.frames);
  const uint64_t last_id = phase.first_frame + total - 1;
  // Agent k's frame i is its source's recorded frame at step (i + lag) of the cycle.
  std::vector<std::vector<const v1::FeatureMessage*>> plan(agents_.size());
  for (size_t k = 0; k < agents_.size(); ++k) {
    for (uint64_t i = 0; i < total; ++i) {
      const uint64_t f = phase.cycle[(i + agents_[k].lag) % phase.cycle.size()];
      auto it = recorded.find({agents_[k].source, f});
      if (it == recorded.end()) {
        return absl::InvalidArgumentError(absl::StrCat("the recording has no message of agent ",
                                                       agents_[k].source, " for frame ", f));
      }
      plan[k].push_back(&it->second);
    }
  }
  QV2X_ASSIGN_OR_RETURN(v1::FusionStatus before, Status());
  std::map<std::string, int64_t> rejected_before;
  size_t seen_before = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rejected_before = rejected_;
    seen_before = seen_.size();
  }
  const double load_start = LoadAverage();
  const auto period = std::chrono::duration<double>(1.0 / phase.rate_hz);
  const auto t0 = SteadyClock::now() + std::chrono::milliseconds(200);
  std::vector<std::thread> senders;
  for (size_t k = 0; k < agents_.size(); ++k) {
    senders.emplace_back([&, k] {
      for (uint64_t i = 0; i < total; ++i) {
        std::this_thread::sleep_until(t0 + std::chrono::duration_cast<SteadyClock::duration>(
                                               period * static_cast<double>(i)));
        v1::FeatureMessage m = *plan[k][i];
        m.set_agent_id(agents_[k].id);
        m.set_frame_id(phase.first_frame + i);
        m.set_capture_time_unix_ns(sim::NowUnixNs());
        if (!streams_[k]->rw->Write(m)) return;  // the reader records why
      }
    });
  }
  for (std::thread& t : senders) t.join();
  const auto send_done = SteadyClock::now();
  {
    // Every frame closes: complete, or at the fusion service's deadline.
    std::unique_lock<std::mutex> lock(mu_);
    const auto limit = send_done + std::chrono::seconds(60);
    cv_.wait_until(lock, limit,
                   [&] { return !broken_.empty() || (closed_ && *closed_ >= last_id); });
    if (!broken_.empty()) return absl::UnavailableError(broken_);
    if (!closed_ || *closed_ < last_id) {
      return absl::DeadlineExceededError(absl::StrCat(
          "fusion closed frames only up to ", closed_ ? static_cast<int64_t>(*closed_) : -1, " of ",
          phase.first_frame, "..", last_id, " within 60 s of the last send"));
    }
    // Boxes are published before the frame's closed notice, on another stream.
    cv_.wait_until(lock, SteadyClock::now() + std::chrono::seconds(2), [&] {
      return std::any_of(seen_.begin() + static_cast<std::ptrdiff_t>(seen_before), seen_.end(),
                         [&](const Seen& s) { return s.frame.frame_id() == last_id; });
    });
  }
  QV2X_ASSIGN_OR_RETURN(v1::FusionStatus after, Status());

  const uint64_t first_measured = phase.first_frame + static_cast<uint64_t>(phase.warmup);
  std::vector<double> e2e, fuse;
  int64_t fused = 0, partial = 0, after_last_send = 0, agents_sum = 0;
  int agents_min = static_cast<int>(agents_.size());
  bool last_fused = false;
  std::optional<SteadyClock::time_point> first_at, last_at;
  nlohmann::json rejected = nlohmann::json::object();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = seen_before; i < seen_.size(); ++i) {
      const v1::DetectionFrame& f = seen_[i].frame;
      if (f.frame_id() < first_measured || f.frame_id() > last_id) continue;
      ++fused;
      e2e.push_back(f.e2e_latency_seconds());
      fuse.push_back(f.fuse_seconds());
      agents_sum += f.agents_size();
      agents_min = std::min(agents_min, f.agents_size());
      if (f.missing_agents_size() > 0) ++partial;
      if (seen_[i].at > send_done) ++after_last_send;
      last_fused |= f.frame_id() == last_id;
      if (!first_at) first_at = seen_[i].at;
      last_at = seen_[i].at;
    }
    for (const auto& [reason, n] : rejected_) {
      const int64_t d = n - (rejected_before.count(reason) ? rejected_before.at(reason) : 0);
      if (d > 0) rejected[reason] = d;
    }
  }
  const int64_t dropped = phase.frames - fused;
  // Frames are sent one period apart: n fused frames span n - 1 periods at the full rate.
  const double span_s = fused > 1 ? std::chrono::duration<double>(*last_at - *first_at).count() : 0;
  const double p99 = Percentile(e2e, 0.99);
  return nlohmann::json{
      {"agents", agents_.size()},
      {"rate_hz", phase.rate_hz},
      {"precision", phase.precision},
      {"warmup_frames", phase.warmup},
      {"frames_sent", phase.frames},
      {"frames_fused", fused},
      {"frames_dropped", dropped},
      {"frames_partial", partial},
      {"agents_per_frame_min", fused > 0 ? agents_min : 0},
      {"agents_per_frame_mean", fused > 0 ? static_cast<double>(agents_sum) / fused : 0.0},
      {"fused_frames_per_second", span_s > 0 ? (fused - 1) / span_s : 0.0},
      {"e2e_latency_p50_s", Percentile(e2e, 0.5)},
      {"e2e_latency_p95_s", Percentile(e2e, 0.95)},
      {"e2e_latency_p99_s", p99},
      {"e2e_latency_max_s", Percentile(e2e, 1.0)},
      {"fuse_p50_s", Percentile(fuse, 0.5)},
      {"fuse_p99_s", Percentile(fuse, 0.99)},
      {"fused_after_last_send", after_last_send},
      {"last_frame_fused", last_fused},
      {"rejected", rejected},
      {"fusion_frames_fused", after.frames_fused() - before.frames_fused()},
      {"fusion_frames_dropped", after.frames_dropped() - before.frames_dropped()},
      {"loadavg_start", load_start},
      {"loadavg_end", LoadAverage()},
      {"sustained", dropped == 0 && partial == 0 && rejected.empty() && p99 < latency_bound_s},
  };
}

}  // namespace qv2x::cli
