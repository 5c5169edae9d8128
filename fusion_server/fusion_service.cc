#include "fusion_server/fusion_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/eval_proto.h"
#include "services/log.h"
#include "services/model_paths.h"
#include "services/status_convert.h"

namespace qv2x::fusion {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

Histogram::BucketBoundaries LatencyBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10};
}

// "fp32" or "int8" when every fused encoder and the ego half ran at that precision,
// "mixed" otherwise (e.g. during a live swap).
const char* FramePrecision(const v1::DetectionFrame& f) {
  bool fp32 = f.fusion_precision() != v1::PRECISION_INT8, int8 = !fp32;
  for (const v1::AgentContribution& a : f.agents()) {
    (a.precision() == v1::PRECISION_INT8 ? int8 : fp32) = true;
  }
  return fp32 && int8 ? "mixed" : int8 ? "int8" : "fp32";
}

}  // namespace

struct FusionService::Metrics {
  Family<Counter>& received_bytes;
  Family<Counter>& fp32_bytes;
  Family<Counter>& messages;
  Family<Counter>& rejected;
  Family<Counter>& late;
  Family<Counter>& missing;
  Family<Counter>& fused_messages;
  Family<Counter>& discarded;
  Family<Counter>& frames;
  Family<Histogram>& e2e;
  std::map<std::string, Histogram*> e2e_by_precision;  // fp32, int8, mixed
  Histogram& fuse;
  Gauge& open_frames;
  Gauge& fuse_backlog;
  Counter& unscored;
  Histogram& agents_per_frame;
  Family<Histogram>& message_bytes;
  Family<Gauge>& connected;
  Family<Gauge>& open_streams;
  Gauge& open_feature_streams;
  Gauge& open_watchers;
  Counter& watcher_dropped;
  Family<Gauge>& ap;
  Gauge& codebooks_held;
  Family<Counter>& model_loads;
  Gauge& model_generation;

  explicit Metrics(prometheus::Registry& r)
      : received_bytes(prometheus::BuildCounter()
                           .Name("qv2x_fusion_received_bytes_total")
                           .Help("Serialized bytes of accepted feature messages, per agent")
                           .Register(r)),
        fp32_bytes(prometheus::BuildCounter()
                       .Name("qv2x_fusion_feature_fp32_bytes_total")
                       .Help("What the accepted messages' FP32 feature maps would have cost")
                       .Register(r)),
        messages(prometheus::BuildCounter()
                     .Name("qv2x_fusion_messages_total")
                     .Help("Feature messages accepted, per agent")
                     .Register(r)),
        rejected(prometheus::BuildCounter()
                     .Name("qv2x_fusion_rejected_messages_total")
                     .Help("Feature messages refused, by reason")
                     .Register(r)),
        late(prometheus::BuildCounter()
                 .Name("qv2x_fusion_late_messages_total")
                 .Help("Messages for frames already fused or dropped, per agent")
                 .Register(r)),
        missing(prometheus::BuildCounter()
                    .Name("qv2x_fusion_missing_messages_total")
                    .Help("Frames closed without this expected agent's message")
                    .Register(r)),
        fused_messages(prometheus::BuildCounter()
                           .Name("qv2x_fusion_fused_messages_total")
                           .Help("Accepted messages whose features went into a fused frame")
                           .Register(r)),
        discarded(prometheus::BuildCounter()
                      .Name("qv2x_fusion_discarded_messages_total")
                      .Help("Accepted messages left out of fusion, by reason (no_ego, error, "
                            "max_cav, retired_codebook, frame_window, overload); with fused, "
                            "every accepted message once its frame closed")
                      .Register(r)),
        frames(prometheus::BuildCounter()
                   .Name("qv2x_fusion_frames_total")
                   .Help("Closed frames by outcome (fused, no_ego, error, overload: dropped "
                         "unfused because newer frames were waiting)")
                   .Register(r)),
        e2e(prometheus::BuildHistogram()
                .Name("qv2x_fusion_e2e_latency_seconds")
                .Help("Earliest capture time of a frame's sweeps to its boxes, by the "
                      "precision of its encoders and ego half (fp32, int8 or mixed)")
                .Register(r)),
        fuse(prometheus::BuildHistogram()
                 .Name("qv2x_fusion_fuse_duration_seconds")
                 .Help("Decode, warp, fusion, heads and NMS of one frame")
                 .Register(r)
                 .Add({}, LatencyBuckets())),
        open_frames(prometheus::BuildGauge()
                        .Name("qv2x_fusion_open_frames")
                        .Help("Frames being assembled (messages arriving, not closed yet)")
                        .Register(r)
                        .Add({})),
        fuse_backlog(prometheus::BuildGauge()
                         .Name("qv2x_fusion_fuse_backlog_frames")
                         .Help("Closed frames waiting for the fuse thread (at most "
                               "--max_fuse_backlog; beyond it the oldest are dropped)")
                         .Register(r)
                         .Add({})),
        unscored(prometheus::BuildCounter()
                     .Name("qv2x_fusion_unscored_frames_total")
                     .Help("Fused frames left out of the rolling AP because scoring fell behind")
                     .Register(r)
                     .Add({})),
        agents_per_frame(prometheus::BuildHistogram()
                             .Name("qv2x_fusion_agents_per_frame")
                             .Help("Agents fused into each frame")
                             .Register(r)
                             .Add({}, Histogram::BucketBoundaries{1, 2, 3, 4, 5, 6, 8, 12, 16})),
        message_bytes(prometheus::BuildHistogram()
                          .Name("qv2x_fusion_message_bytes")
                          .Help("Serialized size of accepted feature messages, by encoding")
                          .Register(r)),
        connected(prometheus::BuildGauge()
                      .Name("qv2x_fusion_connected_agents")
                      .Help("Agents with an open feature stream")
                      .Register(r)),
        open_streams(prometheus::BuildGauge()
                         .Name("qv2x_fusion_open_streams")
                         .Help("Open calls of the streaming RPCs, whether or not they ever "
                               "sent anything")
                         .Register(r)),
        open_feature_streams(open_streams.Add({{"rpc", "StreamFeatures"}})),
        open_watchers(open_streams.Add({{"rpc", "WatchDetections"}})),

        watcher_dropped(prometheus::BuildCounter()
                            .Name("qv2x_fusion_watcher_dropped_frames_total")
                            .Help("Detection frames a slow WatchDetections subscriber missed")
                            .Register(r)
                            .Add({})),
        ap(prometheus::BuildGauge()
               .Name("qv2x_fusion_ap")
               .Help("Rolling average precision of the fused detections (global sort)")
               .Register(r)),
        codebooks_held(prometheus::BuildGauge()
                           .Name("qv2x_fusion_codebooks_held")
                           .Help("Codebooks whose indices are accepted (2 during a roll-out)")
                           .Register(r)
                           .Add({})),
        model_loads(prometheus::BuildCounter()
                        .Name("qv2x_fusion_model_loads_total")
                        .Help("LoadModel calls by outcome (ok, error)")
                        .Register(r)),
        model_generation(prometheus::BuildGauge()
                             .Name("qv2x_fusion_model_generation")
                             .Help("Bumped by every model loaded into the running service")
                             .Register(r)
                             .Add({})) {}
};

FusionService::FusionService(FusionEngine* engine, FusionOptions options,
                             prometheus::Registry& registry)
    : engine_(engine),
      options_(std::move(options)),
      validator_([&] {
        ValidatorOptions v;
        v.agents = std::set<int>(options_.assembler.expected_agents.begin(),
                                 options_.assembler.expected_agents.end());
        v.grid = engine->grid();
        v.codebooks = engine->held_codebooks();
        v.feature_channels = engine->feature_channels();
        v.max_message_bytes = options_.max_message_bytes;
        v.max_decoded_bytes = options_.max_decoded_bytes;
        v.max_capture_ahead_ns = options_.max_capture_ahead_ns;
        v.max_capture_age_ns = options_.max_capture_age_ns;
        v.dictionaries = options_.dictionaries;
        return v;
      }()),
      metrics_(std::make_unique<Metrics>(registry)),
      assembler_(options_.assembler, Clock::now()),
      backlog_(options_.max_fuse_backlog) {
  // Every series exists from the start so dashboards and scrapes see zeros, not gaps.
  for (int id : options_.assembler.expected_agents) {
    const std::string a = std::to_string(id);
    metrics_->received_bytes.Add({{"agent", a}});
    metrics_->fp32_bytes.Add({{"agent", a}});
    metrics_->messages.Add({{"agent", a}});
    metrics_->late.Add({{"agent", a}});
    metrics_->missing.Add({{"agent", a}});
    metrics_->fused_messages.Add({{"agent", a}});
    for (const char* why :
         {"no_ego", "error", "max_cav", "retired_codebook", "frame_window", "overload"}) {
      metrics_->discarded.Add({{"agent", a}, {"reason", why}});
    }
  }
  for (int r = v1::RejectReason_MIN + 1; r <= v1::RejectReason_MAX; ++r) {
    metrics_->rejected.Add({{"reason", ReasonLabel(static_cast<v1::RejectReason>(r))}});
  }
  for (const char* o : {"fused", "no_ego", "error", "overload"}) {
    metrics_->frames.Add({{"outcome", o}});
  }
  for (const char* p : {"fp32", "int8", "mixed"}) {
    metrics_->e2e_by_precision[p] = &metrics_->e2e.Add({{"precision", p}}, LatencyBuckets());
  }
  for (const char* o : {"ok", "error"}) metrics_->model_loads.Add({{"outcome", o}});
  metrics_->codebooks_held.Set(1);
  metrics_->connected.Add({});
  for (int c = 0; c < kNumClasses; ++c) {
    for (const char* iou : {"0.3", "0.5", "0.7"}) {
      metrics_->ap.Add({{"class", ClassName(static_cast<ObjectClass>(c))}, {"iou", iou}});
    }
  }
}

FusionService::~FusionService() { Stop(); }

void FusionService::Start() {
  fuse_thread_ = std::thread([this] { FuseLoop(); });
  score_thread_ = std::thread([this] { ScoreLoop(); });
}

void FusionService::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (FeatureStream* s : streams_) {
      s->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "fusion is shutting down"));
    }
    for (DetectionWatch* w : watchers_) w->End(grpc::Status::OK);
  }
  cv_.notify_all();
  {
    std::lock_guard<std::mutex> lock(score_mu_);
    score_cv_.notify_all();
  }
  if (fuse_thread_.joinable()) fuse_thread_.join();
  if (score_thread_.joinable()) score_thread_.join();
}

void FusionService::AgentLink(int agent_id, int delta) {
  // Caller holds mu_.
  int& n = links_[agent_id];
  n += delta;
  assembler_.SetConnected(agent_id, n > 0);
  metrics_->connected.Add({}).Set(static_cast<double>(assembler_.connected_agents().size()));
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* FusionService::StreamFeatures(
    grpc::CallbackServerContext* ctx) {
  auto* stream = new FeatureStream(this, ctx, options_.stream_queue);
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    stream->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "fusion is shutting down"));
  } else {
    streams_.insert(stream);
    // Where the scene is, before anything else: a restarted lock-step agent starts there
    // instead of sending frames that are already closed.
    if (std::optional<uint64_t> closed = assembler_.last_closed()) {
      v1::FeatureStreamReply now;
      now.set_frame_closed(*closed);
      stream->Push(std::move(now));
    }
  }
  metrics_->open_feature_streams.Set(static_cast<double>(streams_.size()));
  return stream;
}

void FusionService::CountRejection(v1::RejectReason reason, const std::string& detail, int agent_id,
                                   uint64_t frame_id) {
  const std::string label = ReasonLabel(reason);
  metrics_->rejected.Add({{"reason", label}}).Increment();
  // The counter has every rejection; the log the first few per reason and then one per
  // interval, so that a misbehaving peer cannot flood it.
  uint64_t held_back = 0;
  if (rejection_log_.Allow(label, absl::Now(), &held_back)) {
    services::LogWarning(
        "rejected agent ", agent_id, " frame ", frame_id, ": ", label, ": ", detail,
        held_back > 0 ? absl::StrCat(" (", held_back, " more ", label, " rejections not logged)")
                      : std::string());
  }
}

absl::StatusOr<v1::FeatureStreamReply> FusionService::OnMessage(FeatureStream& stream,
                                                                const v1::FeatureMessage& msg) {
  v1::FeatureStreamReply reply;
  v1::FeatureAck* ack = reply.mutable_ack();
  ack->set_agent_id(msg.agent_id());
  ack->set_frame_id(msg.frame_id());
  auto reject = [&](v1::RejectReason reason, std::string detail) {
    CountRejection(reason, detail, msg.agent_id(), msg.frame_id());
    ack->set_reason(reason);
    ack->set_detail(std::move(detail));
    return reply;
  };
  // A stream speaks for one agent: the first of the scene it named.
  if (stream.agent && msg.agent_id() != *stream.agent) {
    return reject(
        v1::REJECT_REASON_AGENT_SWITCH,
        absl::StrCat("this stream speaks for agent ", *stream.agent, ", not ", msg.agent_id()));
  }
  if (!stream.agent && validator_.KnowsAgent(msg.agent_id())) {
    if (options_.authorize_agent) {
      if (absl::Status st = options_.authorize_agent(stream.context(), msg.agent_id()); !st.ok()) {
        CountRejection(v1::REJECT_REASON_IDENTITY, std::string(st.message()), msg.agent_id(),
                       msg.frame_id());
        return st;
      }
    }
    stream.agent = msg.agent_id();
  }
  ReceivedMessage received;
  Rejection why;
  if (!validator_.Validate(msg, sim::NowUnixNs(), &received, &why)) {
    return reject(why.reason, std::move(why.detail));
  }
  received.arrival = Clock::now();
  AddResult added;
  std::optional<uint64_t> horizon;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stream.linked) {
      stream.linked = true;
      AgentLink(*stream.agent, +1);
    }
    added = assembler_.Add(received);
    if (added == AddResult::kAccepted) {
      CodebookUse& use = codebook_use_[received.codebook_digest];
      ++use.messages;
      use.last_frame_id = std::max(use.last_frame_id, msg.frame_id());
      agent_codebook_[msg.agent_id()] = received.codebook_digest;
    } else if (added == AddResult::kOutOfWindow) {
      horizon = assembler_.Horizon(received.arrival);
    }
  }
  const std::string agent = std::to_string(msg.agent_id());
  switch (added) {
    case AddResult::kAccepted: {
      cv_.notify_all();
      const v1::AgentContribution& c = received.contribution;
      metrics_->received_bytes.Add({{"agent", agent}}).Increment(c.message_bytes());
      metrics_->fp32_bytes.Add({{"agent", agent}}).Increment(c.fp32_feature_bytes());
      metrics_->messages.Add({{"agent", agent}}).Increment();
      metrics_->message_bytes
          .Add({{"encoding", c.encoding() == v1::INDEX_ENCODING_ZSTD ? "zstd" : "bitpack"}},
               Histogram::BucketBoundaries{256, 1024, 4096, 8192, 16384, 32768, 65536, 131072,
                                           262144, 1048576})
          .Observe(static_cast<double>(c.message_bytes()));
      ack->set_accepted(true);
      return reply;
    }
    case AddResult::kLate:
      metrics_->late.Add({{"agent", agent}}).Increment();
      ack->set_reason(v1::REJECT_REASON_LATE);
      ack->set_detail(absl::StrCat("frame ", msg.frame_id(), " was already closed"));
      return reply;
    case AddResult::kDuplicate:
      return reject(v1::REJECT_REASON_DUPLICATE,
                    absl::StrCat("agent ", msg.agent_id(), " already sent frame ", msg.frame_id()));
    case AddResult::kOutOfWindow:
      break;
  }
  return reject(v1::REJECT_REASON_FRAME_WINDOW,
                absl::StrCat("frame ", msg.frame_id(), " is beyond the scene's window (frame ",
                             horizon.value_or(0), " at most now)"));
}

void FusionService::OnUnparseable(FeatureStream& stream, size_t bytes) {
  CountRejection(v1::REJECT_REASON_UNPARSEABLE,
                 absl::StrCat(bytes, " bytes are not a qv2x.v1.FeatureMessage; stream ended"),
                 stream.agent.value_or(-1), 0);
}

void FusionService::OnDone(FeatureStream& stream) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    streams_.erase(&stream);
    metrics_->open_feature_streams.Set(static_cast<double>(streams_.size()));
    if (stream.linked) AgentLink(*stream.agent, -1);
  }
  cv_.notify_all();  // frames waiting on this agent may be due now
  if (stream.linked) services::LogInfo("agent ", *stream.agent, " stream closed");
}

void FusionService::Discard(const ClosedFrame& f, const char* reason) {
  for (const ReceivedMessage& m : f.messages) {
    metrics_->discarded.Add({{"agent", std::to_string(m.agent_id)}, {"reason", reason}})
        .Increment();
  }
}

void FusionService::NotifyClosed(uint64_t frame_id) {
  v1::FeatureStreamReply reply;
  reply.set_frame_closed(frame_id);
  std::lock_guard<std::mutex> lock(mu_);
  for (FeatureStream* s : streams_) s->Push(reply);
}

void FusionService::Publish(const v1::DetectionFrame& frame) {
  std::lock_guard<std::mutex> lock(mu_);
  for (DetectionWatch* w : watchers_) {
    if (w->Push(frame) > 0) metrics_->watcher_dropped.Increment();
  }
}

void FusionService::FuseLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (backlog_.size() == 0) {
      // Wake for new messages, disconnects, or the earliest deadline (and re-check the
      // start-up grace now and then).
      Clock::time_point wake = Clock::now() + std::chrono::milliseconds(50);
      if (auto d = assembler_.NextDeadline(); d && *d < wake) wake = *d;
      cv_.wait_until(lock, wake);
      if (stopping_) break;
    }
    // Frames that closed while the previous one was fusing join the backlog, which pushes
    // out its oldest when full: one frame is fused per turn, always after this check, so a
    // slow fuse never queues up stale frames.
    std::vector<std::pair<ClosedFrame, bool>> skipped;  // second: dropped for overload
    for (ClosedFrame& f : assembler_.TakeDue(Clock::now())) {
      if (f.out_of_window || !f.has_ego) {
        skipped.emplace_back(std::move(f), false);
        continue;
      }
      for (ClosedFrame& old : backlog_.Push(std::move(f)))
        skipped.emplace_back(std::move(old), true);
    }
    std::optional<ClosedFrame> next = backlog_.Pop();
    metrics_->open_frames.Set(static_cast<double>(assembler_.pending()));
    metrics_->fuse_backlog.Set(static_cast<double>(backlog_.size()));
    if (skipped.empty() && !next) continue;
    lock.unlock();
    for (const auto& [f, overload] : skipped) Skip(f, overload);
    if (next) {
      Fuse(*next);
      NotifyClosed(next->frame_id);
    }
    lock.lock();
  }
}

void FusionService::Skip(const ClosedFrame& f, bool overload) {
  if (f.out_of_window) {
    Discard(f, "frame_window");
    services::LogWarning("frame ", f.frame_id, " of agent ", f.messages.front().agent_id,
                         " dropped: far ahead of the frames that arrived after it");
    return;
  }
  for (int id : f.missing) metrics_->missing.Add({{"agent", std::to_string(id)}}).Increment();
  const char* why = overload ? "overload" : "no_ego";
  Discard(f, why);
  metrics_->frames.Add({{"outcome", why}}).Increment();
  uint64_t held_back = 0;
  if (overload && overload_log_.Allow(why, absl::Now(), &held_back)) {
    services::LogWarning(
        "falling behind: frame ", f.frame_id, " dropped unfused, newer frames are waiting",
        held_back > 0 ? absl::StrCat(" (", held_back + 1, " frames dropped since the last report)")
                      : std::string());
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    ++frames_dropped_;
  }
  NotifyClosed(f.frame_id);
}

void FusionService::Fuse(const ClosedFrame& f) {
  for (int id : f.missing) metrics_->missing.Add({{"agent", std::to_string(id)}}).Increment();
  absl::StatusOr<FusedFrame> fused = engine_->Fuse(f);
  if (!fused.ok()) {
    Discard(f, "error");
    metrics_->frames.Add({{"outcome", "error"}}).Increment();
    services::LogError(absl::StrCat("frame ", f.frame_id, ": ", fused.status().message()));
    std::lock_guard<std::mutex> g(mu_);
    ++frames_dropped_;
    return;
  }
  int64_t first_capture = f.messages.front().capture_time_ns;
  for (const ReceivedMessage& m : f.messages) {
    first_capture = std::min(first_capture, m.capture_time_ns);
  }
  const double e2e = (sim::NowUnixNs() - first_capture) * 1e-9;
  v1::DetectionFrame out;
  out.set_frame_id(f.frame_id);
  const sim::SceneInstant at = engine_->Instant(f.frame_id);
  out.set_scenario(at.scenario);
  out.set_frame_index(at.index);
  for (int id : fused->agents) {
    for (const ReceivedMessage& m : f.messages) {
      if (m.agent_id == id) *out.add_agents() = m.contribution;
    }
  }
  for (const ReceivedMessage& m : f.messages) {
    const std::string a = std::to_string(m.agent_id);
    const auto& in = fused->agents;
    const auto& retired = fused->undecodable;
    if (std::find(in.begin(), in.end(), m.agent_id) != in.end()) {
      metrics_->fused_messages.Add({{"agent", a}}).Increment();
    } else {
      const bool was_retired =
          std::find(retired.begin(), retired.end(), m.agent_id) != retired.end();
      metrics_->discarded
          .Add({{"agent", a}, {"reason", was_retired ? "retired_codebook" : "max_cav"}})
          .Increment();
    }
  }
  for (const Detection& d : fused->detections) {
    v1::Box* b = out.add_boxes();
    b->set_class_name(ClassName(d.cls));
    b->set_x(d.box.x);
    b->set_y(d.box.y);
    b->set_z(d.box.z);
    b->set_l(d.box.l);
    b->set_w(d.box.w);
    b->set_h(d.box.h);
    b->set_yaw(d.box.yaw);
    b->set_score(static_cast<float>(d.score));
  }
  out.set_e2e_latency_seconds(e2e);
  out.set_fusion_precision(fused->int8 ? v1::PRECISION_INT8 : v1::PRECISION_FP32);
  out.set_fuse_seconds(fused->fuse_seconds);
  for (int id : f.missing) out.add_missing_agents(id);
  if (!fused->undecodable.empty()) {
    services::LogWarning(absl::StrCat("frame ", f.frame_id, ": ", fused->undecodable.size(),
                                      " agent(s) left out: their codebook was retired"));
  }
  metrics_->frames.Add({{"outcome", "fused"}}).Increment();
  metrics_->e2e_by_precision.at(FramePrecision(out))->Observe(e2e);
  metrics_->fuse.Observe(fused->fuse_seconds);
  metrics_->agents_per_frame.Observe(static_cast<double>(fused->agents.size()));
  {
    std::lock_guard<std::mutex> g(mu_);
    ++frames_fused_;
    for (const v1::ClassAp& c : ap_) *out.add_rolling_ap() = c;
    out.set_ap_frames(ap_frames_);
  }
  Publish(out);
  if (!options_.score) return;
  {
    std::lock_guard<std::mutex> g(score_mu_);
    // Scoring only feeds the rolling AP: when it falls behind, the oldest frames go unscored.
    while (!score_queue_.empty() && score_queue_.size() >= options_.score_queue) {
      score_queue_.pop_front();
      metrics_->unscored.Increment();
    }
    score_queue_.push_back(std::move(*fused));
  }
  score_cv_.notify_one();
}

void FusionService::ScoreLoop() {
  while (true) {
    FusedFrame frame;
    {
      std::unique_lock<std::mutex> lock(score_mu_);
      score_cv_.wait(lock, [&] {
        std::lock_guard<std::mutex> g(mu_);
        return stopping_ || !score_queue_.empty();
      });
      if (score_queue_.empty()) return;
      frame = std::move(score_queue_.front());
      score_queue_.pop_front();
    }
    absl::StatusOr<EvalResult> r = engine_->Score(frame);
    if (!r.ok()) {
      services::LogWarning(
          absl::StrCat("scoring frame ", frame.frame_id, ": ", r.status().message()));
      continue;
    }
    std::vector<v1::ClassAp> ap = services::ClassAps(*r);
    static const char* kIou[] = {"0.3", "0.5", "0.7"};
    for (int c = 0; c < kNumClasses; ++c) {
      for (int t = 0; t < 3; ++t) {
        metrics_->ap.Add({{"class", ap[c].class_name()}, {"iou", kIou[t]}}).Set(r->ap[c][t]);
      }
    }
    std::lock_guard<std::mutex> g(mu_);
    ap_ = std::move(ap);
    ap_frames_ = r->num_frames;
  }
}

grpc::ServerWriteReactor<v1::DetectionFrame>* FusionService::WatchDetections(
    grpc::CallbackServerContext*, const v1::WatchRequest*) {
  auto* w = new DetectionWatch(options_.watcher_queue, [this](DetectionWatch* done) {
    std::lock_guard<std::mutex> lock(mu_);
    watchers_.erase(done);
    metrics_->open_watchers.Set(static_cast<double>(watchers_.size()));
  });
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    w->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "fusion is shutting down"));
  } else {
    watchers_.insert(w);
  }
  metrics_->open_watchers.Set(static_cast<double>(watchers_.size()));
  return w;
}

grpc::Status FusionService::GetStatus(grpc::ServerContext*, const v1::FusionStatusRequest*,
                                      v1::FusionStatus* response) {
  std::lock_guard<std::mutex> lock(mu_);
  response->set_frames_fused(frames_fused_);
  response->set_frames_dropped(frames_dropped_);
  for (int id : options_.assembler.expected_agents) response->add_expected_agents(id);
  for (int id : assembler_.connected_agents()) response->add_connected_agents(id);
  response->set_codebook_digest(engine_->codebook_digest());
  const codec::IndexGrid& g = engine_->grid();
  response->mutable_grid()->set_levels(static_cast<uint32_t>(g.levels));
  response->mutable_grid()->set_height(static_cast<uint32_t>(g.height));
  response->mutable_grid()->set_width(static_cast<uint32_t>(g.width));
  response->mutable_grid()->set_dict_size(static_cast<uint32_t>(g.dict_size));
  for (const v1::ClassAp& c : ap_) *response->add_rolling_ap() = c;
  response->set_precision(engine_->int8() ? v1::PRECISION_INT8 : v1::PRECISION_FP32);
  response->set_int8_available(engine_->has_int8());
  response->set_checkpoint(engine_->checkpoint());
  response->set_int8_artifact(engine_->int8_artifact());
  response->set_model_generation(engine_->model_generation());
  const std::string current = engine_->codebook_digest();
  const std::vector<int> connected = assembler_.connected_agents();
  for (const std::string& digest : engine_->held_codebooks()) {
    v1::HeldCodebook* h = response->add_codebooks();
    h->set_digest(digest);
    h->set_current(digest == current);
    if (auto it = codebook_use_.find(digest); it != codebook_use_.end()) {
      h->set_messages(it->second.messages);
      h->set_last_frame_id(it->second.last_frame_id);
    }
    for (int id : connected) {
      if (auto it = agent_codebook_.find(id); it != agent_codebook_.end() && it->second == digest) {
        h->add_agents(id);
      }
    }
  }
  return grpc::Status::OK;
}

void FusionService::CodebooksChanged() {
  std::set<std::string> held = engine_->held_codebooks();
  metrics_->codebooks_held.Set(static_cast<double>(held.size()));
  validator_.SetCodebooks(std::move(held));
}

grpc::Status FusionService::LoadModel(grpc::ServerContext* ctx,
                                      const v1::FusionLoadModelRequest* request,
                                      v1::FusionStatus* response) {
  services::ModelPaths paths{request->checkpoint(), request->int8_artifact()};
  absl::StatusOr<ModelLoad> load = [&]() -> absl::StatusOr<ModelLoad> {
    if (!options_.artifacts_dir.empty()) {
      absl::StatusOr<services::ModelPaths> confined = services::ConfineModelPaths(
          options_.artifacts_dir, request->checkpoint(), request->int8_artifact());
      if (!confined.ok()) return confined.status();
      paths = *std::move(confined);
    }
    // Loads on this RPC thread; frames keep fusing on the old model meanwhile.
    return engine_->LoadModel(paths.checkpoint, paths.int8_artifact);
  }();
  if (!load.ok()) {
    metrics_->model_loads.Add({{"outcome", "error"}}).Increment();
    services::LogWarning(absl::StrCat("fusion: LoadModel ",
                                      services::ClipForLog(request->checkpoint(), 200),
                                      " refused: ", load.status().message()));
    return services::ToGrpc(load.status());
  }
  CodebooksChanged();
  metrics_->model_loads.Add({{"outcome", "ok"}}).Increment();
  metrics_->model_generation.Set(static_cast<double>(load->generation));
  services::LogInfo(absl::StrCat(
      "fusion: model ", paths.checkpoint,
      paths.int8_artifact.empty() ? "" : absl::StrCat(" + ", paths.int8_artifact), " (generation ",
      load->generation, "), codebook ", load->digest,
      load->digest == load->previous_digest
          ? " (unchanged)"
          : absl::StrCat("; still accepting ", load->previous_digest, " until it is retired")));
  return GetStatus(ctx, nullptr, response);
}

grpc::Status FusionService::RetireCodebook(grpc::ServerContext* ctx,
                                           const v1::RetireCodebookRequest* request,
                                           v1::FusionStatus* response) {
  const std::string& digest = request->digest();
  if (!request->force()) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int> users;
    for (int id : assembler_.connected_agents()) {
      if (auto it = agent_codebook_.find(id); it != agent_codebook_.end() && it->second == digest) {
        users.push_back(id);
      }
    }
    if (!users.empty()) {
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("codebook ", digest, " is still sent by connected agent(s) ",
                       absl::StrJoin(users, ", "), ": load the new model into them first"));
    }
  }
  if (absl::Status st = engine_->RetireCodebook(digest); !st.ok()) return services::ToGrpc(st);
  CodebooksChanged();
  services::LogInfo(absl::StrCat("fusion: codebook ", digest, " retired"));
  return GetStatus(ctx, nullptr, response);
}

grpc::Status FusionService::SetPrecision(grpc::ServerContext* ctx,
                                         const v1::FusionPrecisionRequest* request,
                                         v1::FusionStatus* response) {
  if (request->precision() != v1::PRECISION_FP32 && request->precision() != v1::PRECISION_INT8) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "precision must be FP32 or INT8");
  }
  if (absl::Status st = engine_->SetInt8(request->precision() == v1::PRECISION_INT8); !st.ok()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::string(st.message()));
  }
  services::LogInfo(absl::StrCat("fusion: ego half now ", engine_->int8() ? "INT8" : "FP32"));
  return GetStatus(ctx, nullptr, response);
}

}  // namespace qv2x::fusion
