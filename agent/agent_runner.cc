#include "agent/agent_runner.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/sim/scene_clock.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "qv2x/v1/features.grpc.pb.h"
#include "services/feature_message_proto.h"
#include "services/log.h"
#include "services/status_convert.h"
#include "services/tls_credentials.h"

namespace qv2x::agent {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

v1::Precision ToProto(Precision p) {
  return p == Precision::kInt8 ? v1::PRECISION_INT8 : v1::PRECISION_FP32;
}

constexpr auto kControlTimeout = std::chrono::seconds(30);
// Realtime pace: frames of this agent the fusion service may hold unfused at once.
constexpr size_t kMaxInFlight = 2;

}  // namespace

struct AgentRunner::Metrics {
  Family<Histogram>& encode;
  Family<Counter>& sent_bytes;
  Family<Counter>& fp32_bytes;
  Family<Counter>& frames;
  Family<Histogram>& message_bytes;
  Counter& skipped;
  Counter& absent;
  Counter& reconnects;
  Counter& connect_failures;
  Gauge& in_flight;
  Family<Counter>& rejected;
  Gauge& connected;
  Gauge& generation;
  Gauge& sent_cell_fraction;
  std::string agent;
  // This agent's series, resolved once (the agent and encoding labels never change):
  // indexed by Precision.
  Histogram* encode_s[2] = {};
  Counter* frames_sent[2] = {};
  Counter* sent[2] = {};
  Counter* fp32[2] = {};
  Histogram* message_size = nullptr;

  Metrics(prometheus::Registry& r, int agent_id)
      : encode(prometheus::BuildHistogram()
                   .Name("qv2x_agent_encode_duration_seconds")
                   .Help("Own sweep to coded indices: crop, pillars, encoder, codebook, codec")
                   .Register(r)),
        sent_bytes(prometheus::BuildCounter()
                       .Name("qv2x_agent_sent_bytes_total")
                       .Help("Serialized feature-message bytes written to the fusion stream")
                       .Register(r)),
        fp32_bytes(prometheus::BuildCounter()
                       .Name("qv2x_agent_feature_fp32_bytes_total")
                       .Help("What the same frames' FP32 feature maps would have cost")
                       .Register(r)),
        frames(prometheus::BuildCounter()
                   .Name("qv2x_agent_frames_sent_total")
                   .Help("Frames encoded and sent")
                   .Register(r)),
        message_bytes(prometheus::BuildHistogram()
                          .Name("qv2x_agent_message_bytes")
                          .Help("Serialized size of each feature message")
                          .Register(r)),
        skipped(prometheus::BuildCounter()
                    .Name("qv2x_agent_frames_skipped_total")
                    .Help("Scene ticks missed while the previous frame was encoding")
                    .Register(r)
                    .Add({{"agent", std::to_string(agent_id)}})),
        absent(prometheus::BuildCounter()
                   .Name("qv2x_agent_frames_absent_total")
                   .Help("Frames the played-back dataset has no record of this agent for")
                   .Register(r)
                   .Add({{"agent", std::to_string(agent_id)}})),
        reconnects(prometheus::BuildCounter()
                       .Name("qv2x_agent_reconnects_total")
                       .Help("Feature streams re-opened after the fusion service went away")
                       .Register(r)
                       .Add({{"agent", std::to_string(agent_id)}})),
        connect_failures(prometheus::BuildCounter()
                             .Name("qv2x_agent_connect_failures_total")
                             .Help("Attempts to reach the fusion service that failed (spaced by "
                                   "a back-off from 0.1 s doubling to 2 s)")
                             .Register(r)
                             .Add({{"agent", std::to_string(agent_id)}})),
        in_flight(prometheus::BuildGauge()
                      .Name("qv2x_agent_in_flight_frames")
                      .Help("Frames sent on the current stream that the fusion service has not "
                            "closed yet (bounded: the agent waits instead of queueing)")
                      .Register(r)
                      .Add({{"agent", std::to_string(agent_id)}})),
        rejected(prometheus::BuildCounter()
                     .Name("qv2x_agent_rejected_messages_total")
                     .Help("Messages the fusion service refused, by reason")
                     .Register(r)),
        connected(prometheus::BuildGauge()
                      .Name("qv2x_agent_connected")
                      .Help("1 while the feature stream to the fusion service is open")
                      .Register(r)
                      .Add({{"agent", std::to_string(agent_id)}})),
        generation(prometheus::BuildGauge()
                       .Name("qv2x_agent_model_generation")
                       .Help("Bumped by every model load or precision switch")
                       .Register(r)
                       .Add({{"agent", std::to_string(agent_id)}})),
        sent_cell_fraction(prometheus::BuildGauge()
                               .Name("qv2x_agent_sent_cell_fraction")
                               .Help("Share of the feature map's cells the last message sent "
                                     "(1 for a dense map)")
                               .Register(r)
                               .Add({{"agent", std::to_string(agent_id)}})),
        agent(std::to_string(agent_id)) {}

  static Histogram::BucketBoundaries LatencyBuckets() {
    return {0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2};
  }
  static Histogram::BucketBoundaries SizeBuckets() {
    return {256, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 1048576};
  }
};

AgentRunner::AgentRunner(AgentOptions options, const sim::ScenePlayback* playback,
                         std::shared_ptr<AgentModel> model, Precision precision,
                         prometheus::Registry& registry)
    : options_(std::move(options)),
      playback_(playback),
      metrics_(std::make_unique<Metrics>(registry, options_.agent_id)),
      link_(options_.fusion_address, options_.max_message_bytes,
            [this](const v1::FeatureAck& ack) {
              std::lock_guard<std::mutex> lock(mu_);
              ++frames_rejected_;
              std::string reason = v1::RejectReason_Name(ack.reason());
              metrics_->rejected.Add({{"agent", metrics_->agent}, {"reason", reason}}).Increment();
              if (frames_rejected_ <= 10 || frames_rejected_ % 100 == 0) {  // no log flood
                services::LogWarning(absl::StrCat("fusion refused frame ", ack.frame_id(), ": ",
                                                  reason, ": ", ack.detail()));
              }
            }),
      model_(std::move(model)),
      precision_(precision),
      sparse_(options_.sparse),
      next_lockstep_(options_.start_frame) {
  Metrics& m = *metrics_;
  const char* enc = codec::EncodingName(options_.codec.encoding);
  for (Precision p : {Precision::kFp32, Precision::kInt8}) {
    const int i = static_cast<int>(p);
    m.encode_s[i] = &m.encode.Add({{"agent", m.agent}, {"precision", PrecisionName(p)}},
                                  Metrics::LatencyBuckets());
    m.frames_sent[i] = &m.frames.Add({{"agent", m.agent}, {"precision", PrecisionName(p)}});
    // Bytes by precision too, so that bytes per message and compression can be read per
    // precision (they should not change with it: both send the same codebook's indices).
    m.sent[i] =
        &m.sent_bytes.Add({{"agent", m.agent}, {"encoding", enc}, {"precision", PrecisionName(p)}});
    m.fp32[i] = &m.fp32_bytes.Add({{"agent", m.agent}, {"precision", PrecisionName(p)}});
  }
  m.message_size =
      &m.message_bytes.Add({{"agent", m.agent}, {"encoding", enc}}, Metrics::SizeBuckets());
  metrics_->generation.Set(static_cast<double>(generation_));
}

AgentRunner::~AgentRunner() { Stop(); }

void AgentRunner::Stop() {
  stop_ = true;
  cv_.notify_all();
}

void AgentRunner::Run() {
  int backoff_ms = 100;
  bool ever_connected = false;
  while (!stop_) {
    if (!link_.connected()) {
      metrics_->connected.Set(0);
      if (!link_.Connect(std::chrono::milliseconds(backoff_ms))) {
        metrics_->connect_failures.Increment();
        backoff_ms = std::min(2 * backoff_ms, 2000);
        continue;
      }
      backoff_ms = 100;
      if (ever_connected) {
        metrics_->reconnects.Increment();
        services::LogInfo(absl::StrCat("agent ", options_.agent_id, ": reconnected to ",
                                       options_.fusion_address));
      }
      ever_connected = true;
      metrics_->connected.Set(1);
      // A fusion service that has closed frames says which first thing on a new stream:
      // a lock-step agent then starts after them instead of sending closed (late) frames.
      if (options_.pace == Pace::kLockstep) link_.WaitClosed(0, std::chrono::milliseconds(300));
      std::lock_guard<std::mutex> lock(mu_);
      // Resume with the current frame: a restarted fusion service knows nothing of the
      // frames before, so the agent neither replays them nor waits for their notices.
      connect_base_ = next_lockstep_;
      in_flight_.clear();  // a restarted fusion service will not close the old frames
      metrics_->in_flight.Set(0);
    }
    const std::optional<uint64_t> frame = NextFrame();
    if (!frame) continue;
    ApplyPending(*frame);
    if (!EncodeAndSend(*frame)) continue;
    if (options_.max_frames > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      if (frames_sent_ >= options_.max_frames) break;
    }
  }
  // Stopping (SIGTERM, --max_frames): fusion reads what is in flight before the stream ends.
  link_.Drain(std::chrono::seconds(2));
  metrics_->connected.Set(0);
  std::lock_guard<std::mutex> lock(mu_);
  services::LogInfo(
      absl::StrCat("agent ", options_.agent_id, ": stopped after ", frames_sent_, " frames sent"));
}

std::optional<uint64_t> AgentRunner::NextFrame() {
  const sim::SceneConfig& scene = playback_->scene();
  const std::optional<uint64_t> closed = link_.closed();
  size_t open = 0;
  std::optional<uint64_t> oldest_open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!in_flight_.empty() && closed && in_flight_.front() <= *closed) in_flight_.pop_front();
    open = in_flight_.size();
    if (open > 0) oldest_open = in_flight_.front();
  }
  metrics_->in_flight.Set(static_cast<double>(open));
  if (options_.pace == Pace::kRealtime) {
    // Flow control: while kMaxInFlight of this agent's frames are still open at the fusion
    // service (one fusing, one queued), fusion is the bottleneck; encoding more would only
    // queue frames and grow the latency without bound, so ticks are skipped instead.
    if (open >= kMaxInFlight) {
      link_.WaitClosed(*oldest_open, std::chrono::milliseconds(100));
      return std::nullopt;
    }
    // An agent slower than the scene rate encodes every stride-th tick, the stride a power
    // of two that covers its recent frame time. Powers of two keep agents aligned: a slower
    // agent's frames are a subset of a faster one's, so frames still get fused together.
    const uint64_t tick = sim::TickAt(scene, sim::NowUnixNs(), options_.epoch_ns);
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t stride = stride_;
    uint64_t target = (tick + stride - 1) / stride * stride;
    if (last_done_ && target <= *last_done_) target = (*last_done_ / stride + 1) * stride;
    if (target > tick) {
      const int64_t wait_ns = sim::TickTimeNs(scene, target, options_.epoch_ns) - sim::NowUnixNs();
      std::this_thread::sleep_for(
          std::chrono::nanoseconds(std::clamp<int64_t>(wait_ns, 0, 100'000'000)));
      return std::nullopt;
    }
    if (last_done_ && target > *last_done_ + 1) {
      frames_skipped_ += target - *last_done_ - 1;
      metrics_->skipped.Increment(static_cast<double>(target - *last_done_ - 1));
    }
    return target;
  }
  // Lock-step: at most `ahead` frames beyond the one the fusion service works on.
  uint64_t frame;
  int64_t base;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed && *closed >= next_lockstep_) next_lockstep_ = *closed + 1;  // it moved on
    frame = next_lockstep_;
    base = closed ? static_cast<int64_t>(*closed)
                  : static_cast<int64_t>(connect_base_.value_or(frame)) - 1;
  }
  if (static_cast<int64_t>(frame) <= base + 1 + options_.ahead) return frame;
  link_.WaitClosed(frame - 1 - options_.ahead, std::chrono::milliseconds(100));
  return std::nullopt;
}

bool AgentRunner::EncodeAndSend(uint64_t frame_id) {
  const int64_t sweep_start_ns = sim::NowUnixNs();
  absl::StatusOr<std::optional<AgentFrame>> record = playback_->Sweep(frame_id, options_.agent_id);
  if (!record.ok()) {
    services::LogError(absl::StrCat("frame ", frame_id, ": ", record.status().message()));
    Stop();
    return false;
  }
  if (!*record) {  // nothing to send: fusion does not wait for this agent at this frame
    metrics_->absent.Increment();
    std::lock_guard<std::mutex> lock(mu_);
    last_done_ = frame_id;
    next_lockstep_ = frame_id + 1;
    return false;
  }
  const AgentFrame* sweep = &**record;
  const int64_t capture_ns = sim::NowUnixNs();
  const double sweep_s = (capture_ns - sweep_start_ns) * 1e-9;
  std::shared_ptr<AgentModel> model;
  Precision precision;
  std::optional<CellSelection> sparse;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    model = model_;
    precision = precision_;
    sparse = sparse_;
    generation = generation_;
  }
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<EncodedSweep> enc =
      model->Encode(sweep->points, precision, sparse ? &*sparse : nullptr);
  if (!enc.ok()) {
    services::LogError(absl::StrCat("frame ", frame_id, ": ", enc.status().message()));
    return false;
  }
  absl::StatusOr<codec::EncodedIndices> coded = codec::EncodeIndices(
      enc->indices, enc->grid, options_.codec, enc->cell_mask.empty() ? nullptr : &enc->cell_mask);
  if (!coded.ok()) {
    services::LogError(absl::StrCat("frame ", frame_id, ": ", coded.status().message()));
    return false;
  }
  const double encode_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  v1::FeatureMessage msg = services::FeatureMessageProto(
      options_.agent_id, frame_id, capture_ns, sweep->lidar_pose, enc->grid,
      model->codebook_digest(), ToProto(precision), std::move(*coded));
  msg.set_encode_seconds(encode_s);
  msg.set_model_generation(generation);
  const uint64_t size = msg.ByteSizeLong();
  if (!link_.Send(msg)) return false;

  const int pi = static_cast<int>(precision);
  metrics_->encode_s[pi]->Observe(encode_s);
  metrics_->frames_sent[pi]->Increment();
  metrics_->sent[pi]->Increment(static_cast<double>(size));
  metrics_->fp32[pi]->Increment(static_cast<double>(enc->fp32_feature_bytes));
  metrics_->message_size->Observe(static_cast<double>(size));
  metrics_->sent_cell_fraction.Set(msg.sparse()
                                       ? static_cast<double>(msg.sent_cells()) /
                                             static_cast<double>(enc->grid.height * enc->grid.width)
                                       : 1.0);
  std::lock_guard<std::mutex> lock(mu_);
  if (options_.pace == Pace::kRealtime) {
    // Frame time in ticks (sweep to sent), smoothed; the stride follows with hysteresis.
    const double cycle_s = (sim::NowUnixNs() - capture_ns) * 1e-9 + sweep_s;
    cycle_ema_s_ = cycle_ema_s_ == 0 ? cycle_s : 0.8 * cycle_ema_s_ + 0.2 * cycle_s;
    const double need = cycle_ema_s_ * playback_->scene().rate_hz;
    while (stride_ < 64 && need > static_cast<double>(stride_)) stride_ *= 2;
    while (stride_ > 1 && need < 0.7 * static_cast<double>(stride_ / 2)) stride_ /= 2;
  }
  ++frames_sent_;
  bytes_sent_ += size;
  last_sent_ = frame_id;
  last_done_ = frame_id;
  in_flight_.push_back(frame_id);
  next_lockstep_ = frame_id + 1;
  return true;
}

void AgentRunner::ApplyPending(uint64_t next_frame) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!pending_) return;
  if (pending_->model) model_ = std::move(pending_->model);
  if (pending_->precision) precision_ = *pending_->precision;
  if (pending_->sparse) sparse_ = *pending_->sparse;
  ++generation_;
  metrics_->generation.Set(static_cast<double>(generation_));
  applied_id_ = pending_id_;
  applied_frame_ = next_frame;
  pending_.reset();
  services::LogInfo(
      absl::StrCat("agent ", options_.agent_id, ": ", PrecisionName(precision_), ", model ",
                   model_->checkpoint().empty() ? "(initial)" : model_->checkpoint(), ", ",
                   sparse_ ? absl::StrCat("sparse (span >= ", sparse_->min_height_span_m,
                                          " m, dilation ", sparse_->dilation_cells, ")")
                           : std::string("dense"),
                   " from frame ", next_frame));
  cv_.notify_all();
}

grpc::Status AgentRunner::Apply(Change change, grpc::ServerContext* ctx, v1::ControlReply* reply) {
  std::unique_lock<std::mutex> lock(mu_);
  if (pending_) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "another change is waiting for the next frame; retry");
  }
  pending_ = std::move(change);
  const uint64_t id = ++pending_id_;
  const bool applied = cv_.wait_for(lock, kControlTimeout, [&] {
    return applied_id_ >= id || stop_.load() || ctx->IsCancelled();
  });
  if (!applied || applied_id_ < id) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "queued, not applied yet: it takes effect at the next frame this agent "
                        "encodes (is the fusion service reachable?)");
  }
  reply->set_effective_frame_id(applied_frame_);
  lock.unlock();
  FillStatus(reply->mutable_status());
  return grpc::Status::OK;
}

void AgentRunner::FillStatus(v1::AgentStatus* s) {
  std::lock_guard<std::mutex> lock(mu_);
  s->set_agent_id(options_.agent_id);
  s->set_precision(ToProto(precision_));
  s->set_checkpoint(model_->checkpoint());
  s->set_int8_artifact(model_->int8_artifact());
  s->set_codebook_digest(model_->codebook_digest());
  s->set_encoding(options_.codec.encoding == codec::IndexEncoding::kZstd
                      ? v1::INDEX_ENCODING_ZSTD
                      : v1::INDEX_ENCODING_BITPACK);
  s->set_frames_sent(frames_sent_);
  s->set_bytes_sent(bytes_sent_);
  s->set_frames_skipped(frames_skipped_);
  s->set_frames_rejected(frames_rejected_);
  s->set_connected(metrics_->connected.Value() > 0);
  s->set_fusion_address(options_.fusion_address);
  s->set_last_frame_id(last_sent_.value_or(0));
  s->set_model_generation(generation_);
  s->mutable_sparsity()->set_enabled(sparse_.has_value());
  if (sparse_) {
    s->mutable_sparsity()->set_min_height_span_m(sparse_->min_height_span_m);
    s->mutable_sparsity()->set_dilation_cells(static_cast<uint32_t>(sparse_->dilation_cells));
  }
  if (options_.dictionary) s->set_dictionary_digest(options_.dictionary->digest());
}

grpc::Status AgentRunner::GetStatus(grpc::ServerContext*, const v1::AgentStatusRequest*,
                                    v1::AgentStatus* response) {
  FillStatus(response);
  return grpc::Status::OK;
}

grpc::Status AgentRunner::SetPrecision(grpc::ServerContext* ctx,
                                       const v1::SetPrecisionRequest* request,
                                       v1::ControlReply* response) {
  Precision p;
  switch (request->precision()) {
    case v1::PRECISION_FP32:
      p = Precision::kFp32;
      break;
    case v1::PRECISION_INT8:
      p = Precision::kInt8;
      break;
    default:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "precision must be FP32 or INT8");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (p == Precision::kInt8 && !model_->has_int8()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "no INT8 encoder loaded: LoadModel with an int8_artifact first");
    }
  }
  return Apply(Change{nullptr, p, std::nullopt}, ctx, response);
}

grpc::Status AgentRunner::SetSparsity(grpc::ServerContext* ctx,
                                      const v1::SetSparsityRequest* request,
                                      v1::ControlReply* response) {
  const v1::Sparsity& s = request->sparsity();
  if (!s.enabled())
    return Apply(Change{nullptr, std::nullopt, std::optional<CellSelection>()}, ctx, response);
  // The largest span worth a setting is a tall building's; dilation beyond the map is moot.
  if (!(s.min_height_span_m() >= 0 && s.min_height_span_m() <= 100) || s.dilation_cells() > 64) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("min_height_span_m ", s.min_height_span_m(),
                                     " must lie in [0, 100] and dilation_cells ",
                                     s.dilation_cells(), " in [0, 64]"));
  }
  CellSelection sel;
  sel.min_height_span_m = s.min_height_span_m();
  sel.dilation_cells = static_cast<int>(s.dilation_cells());
  return Apply(Change{nullptr, std::nullopt, std::optional<CellSelection>(sel)}, ctx, response);
}

grpc::Status AgentRunner::LoadModel(grpc::ServerContext* ctx, const v1::LoadModelRequest* request,
                                    v1::ControlReply* response) {
  if (request->checkpoint().empty() && request->int8_artifact().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "give a checkpoint, an int8_artifact or both");
  }
  std::string checkpoint = request->checkpoint(), int8 = request->int8_artifact();
  std::string digest;
  Precision precision;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (checkpoint.empty()) checkpoint = model_->checkpoint();
    if (int8.empty()) int8 = model_->int8_artifact();
    digest = model_->codebook_digest();
    precision = precision_;
  }
  // Loading takes seconds; the frame loop keeps running on the old model meanwhile.
  absl::StatusOr<std::shared_ptr<AgentModel>> loaded =
      AgentModel::Load(options_.config_path, checkpoint, int8);
  if (!loaded.ok()) return services::ToGrpc(loaded.status());
  if ((*loaded)->codebook_digest() != digest) {
    // A new codebook is fine once the fusion service holds it (a roll-out: fusion first,
    // then the agents one by one); otherwise every message would be refused.
    absl::StatusOr<std::set<std::string>> held = FusionCodebooks();
    if (!held.ok()) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          absl::StrCat("the new model's codebook ", (*loaded)->codebook_digest(),
                                       " differs from the running one; cannot ask the fusion "
                                       "service whether it holds it: ",
                                       held.status().message()));
    }
    if (held->count((*loaded)->codebook_digest()) == 0) {
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("codebook ", (*loaded)->codebook_digest(),
                       " is not held by the fusion service at ", options_.fusion_address,
                       " (it holds ", absl::StrJoin(*held, ", "),
                       "): load the model into fusion first (qv2x fusion load)"));
    }
  }
  if (precision == Precision::kInt8 && !(*loaded)->has_int8()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "the agent runs INT8 and the new model has no INT8 encoder");
  }
  return Apply(Change{*loaded, std::nullopt, std::nullopt}, ctx, response);
}

absl::StatusOr<std::set<std::string>> AgentRunner::FusionCodebooks() const {
  // The same credentials as the feature stream (TLS, its certificate, the token).
  auto stub = v1::Fusion::NewStub(
      services::NewChannel(options_.fusion_address, services::ProcessClientSecurity()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::FusionStatus status;
  grpc::Status st = stub->GetStatus(&ctx, v1::FusionStatusRequest(), &status);
  if (!st.ok()) return services::FromGrpc(st);
  std::set<std::string> out;
  for (const v1::HeldCodebook& c : status.codebooks()) out.insert(c.digest());
  return out;
}

}  // namespace qv2x::agent
