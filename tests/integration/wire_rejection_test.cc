// Bad input on the feature stream, against a real qv2x-fusion on 127.0.0.1: every kind of
// bad message is refused with its reason and counted while the stream stays open; bytes
// that are no message end the stream with INVALID_ARGUMENT; one frame id far ahead makes
// no later frame late; replies and logs echo nothing unbounded, and logs are rate limited.
#include <gtest/gtest.h>
#include <zstd.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/codec/index_codec.h"
#include "grpcpp/generic/generic_stub.h"
#include "tests/integration/harness/cluster.h"

namespace qv2x {
namespace {

using qv2x::testing::ClusterTest;
using qv2x::testing::SumOf;

std::string ReasonOf(const v1::FeatureAck& ack) {
  return absl::AsciiStrToLower(
      v1::RejectReason_Name(ack.reason()).substr(sizeof("REJECT_REASON_") - 1));
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A hand-written agent: builds valid messages for the running fusion service's model.
class WireTest : public ClusterTest {
 protected:
  void Connect() {
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", fusion_ports_.grpc),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::Fusion::NewStub(channel_);
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->GetStatus(&ctx, {}, &status_).ok());
    const v1::IndexGrid& grid = status_.grid();
    grid_ = {grid.levels(), grid.height(), grid.width(), grid.dict_size()};
  }
  v1::FeatureMessage Make(int agent, uint64_t frame,
                          codec::IndexEncoding e = codec::IndexEncoding::kBitpack) const {
    v1::FeatureMessage m;
    m.set_agent_id(agent);
    m.set_frame_id(frame);
    m.set_capture_time_unix_ns(NowNs());
    m.mutable_lidar_pose()->set_x(1);
    *m.mutable_grid() = status_.grid();
    m.set_codebook_digest(status_.codebook_digest());
    m.set_precision(v1::PRECISION_FP32);
    auto enc = codec::EncodeIndices(std::vector<int32_t>(grid_.cells(), 1), grid_, {e});
    m.set_encoding(e == codec::IndexEncoding::kZstd ? v1::INDEX_ENCODING_ZSTD
                                                    : v1::INDEX_ENCODING_BITPACK);
    m.set_bits_per_index(enc->bits_per_index);
    m.set_decoded_bytes(enc->decoded_bytes);
    m.set_payload(enc->payload);
    return m;
  }
  static v1::FeatureAck Send(
      grpc::ClientReaderWriter<v1::FeatureMessage, v1::FeatureStreamReply>* stream,
      const v1::FeatureMessage& m) {
    EXPECT_TRUE(stream->Write(m));
    v1::FeatureStreamReply reply;
    do {
      if (!stream->Read(&reply)) return {};
    } while (!reply.has_ack());
    return reply.ack();
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Fusion::Stub> stub_;
  v1::FusionStatus status_;
  codec::IndexGrid grid_;
};

TEST_F(WireTest, EveryBadMessageIsRefusedWithItsReasonAndTheStreamStaysOpen) {
  StartFusion(0, {"--max_feature_bytes=20000", "--max_decoded_bytes=100000"});
  Connect();
  const double inf = std::numeric_limits<double>::infinity();
  const codec::IndexGrid g = grid_;
  struct Case {
    const char* what;
    const char* reason;
    std::function<void(v1::FeatureMessage&)> spoil;
  };
  // In order: the stream is bound to agent 1 by the first message naming an agent of the
  // scene, so the unknown agent comes first and the switch to agent 0 after.
  const std::vector<Case> cases = {
      {"agent not in the scene", "unknown_agent", [](auto& m) { m.set_agent_id(42); }},
      {"grid shape", "grid_shape",
       [](auto& m) { m.mutable_grid()->set_height(m.grid().height() + 1); }},
      {"index out of range", "index_range",
       [&](auto& m) {
         // zstd symbols are whole bytes: 200 is no index of a 16-code book.
         std::vector<int32_t> bad(g.cells(), 3);
         bad[5] = 200;
         codec::IndexGrid wide = g;
         wide.dict_size = 256;
         auto enc = codec::EncodeIndices(bad, wide, {codec::IndexEncoding::kZstd});
         m.set_encoding(v1::INDEX_ENCODING_ZSTD);
         m.set_decoded_bytes(enc->decoded_bytes);
         m.set_payload(enc->payload);
       }},
      {"truncated payload", "payload_length",
       [](auto& m) { m.mutable_payload()->resize(m.payload().size() - 2); }},
      {"bytes after the zstd frame", "payload_length",
       [&](auto& m) {
         m = Make(1, m.frame_id(), codec::IndexEncoding::kZstd);
         m.mutable_payload()->append("trailing");
       }},
      {"zstd size that lies", "payload_length",
       [&](auto& m) {
         m = Make(1, m.frame_id(), codec::IndexEncoding::kZstd);
         m.set_decoded_bytes(m.decoded_bytes() + 1);
       }},
      {"decompression bomb", "oversized",
       [&](auto& m) {
         m = Make(1, m.frame_id(), codec::IndexEncoding::kZstd);
         const std::string zeros(8 << 20, '\0');
         std::string bomb(ZSTD_compressBound(zeros.size()), '\0');
         bomb.resize(ZSTD_compress(bomb.data(), bomb.size(), zeros.data(), zeros.size(), 1));
         m.set_payload(bomb);
       }},
      {"codebook not held", "codebook_digest",
       [](auto& m) { m.set_codebook_digest("0123456789abcdef"); }},
      {"over the size limit", "oversized",
       [](auto& m) { m.mutable_payload()->append(30000, 'x'); }},
      {"no pose", "malformed", [](auto& m) { m.clear_lidar_pose(); }},
      {"unknown precision", "malformed",
       [](auto& m) { m.set_precision(static_cast<v1::Precision>(9)); }},
      {"unknown encoding", "malformed",
       [](auto& m) { m.set_encoding(static_cast<v1::IndexEncoding>(12)); }},
      {"NaN pose", "pose", [](auto& m) { m.mutable_lidar_pose()->set_y(std::nan("")); }},
      {"infinite pose", "pose", [&](auto& m) { m.mutable_lidar_pose()->set_yaw(inf); }},
      {"pose at 1e30 m", "pose", [](auto& m) { m.mutable_lidar_pose()->set_x(1e30); }},
      {"capture time an hour ahead", "frame_window",
       [](auto& m) { m.set_capture_time_unix_ns(NowNs() + 3600'000'000'000); }},
      {"capture time an hour old", "frame_window",
       [](auto& m) { m.set_capture_time_unix_ns(NowNs() - 3600'000'000'000); }},
      {"another agent's id", "agent_switch", [](auto& m) { m.set_agent_id(0); }},
  };
  grpc::ClientContext ctx;
  auto stream = stub_->StreamFeatures(&ctx);
  uint64_t frame = 100;
  std::map<std::string, int> expected;
  for (const Case& c : cases) {
    v1::FeatureMessage m = Make(1, frame++);
    c.spoil(m);
    const v1::FeatureAck ack = Send(stream.get(), m);
    EXPECT_FALSE(ack.accepted()) << c.what;
    EXPECT_EQ(ReasonOf(ack), c.reason) << c.what << ": " << ack.detail();
    EXPECT_FALSE(ack.detail().empty()) << c.what;
    EXPECT_LT(ack.detail().size(), 300u) << c.what;
    ++expected[c.reason];
  }
  // A digest the size of a page is refused without being echoed back.
  v1::FeatureMessage long_digest = Make(1, frame++);
  long_digest.set_codebook_digest(std::string(5000, 'f'));
  v1::FeatureAck ack = Send(stream.get(), long_digest);
  EXPECT_EQ(ReasonOf(ack), "malformed");
  EXPECT_EQ(ack.detail().find("fffffffffffffffffffffffffffffffff"), std::string::npos);
  ++expected["malformed"];

  // The same stream still works: a valid message is accepted, its duplicate refused, a
  // frame id far ahead of it refused.
  ack = Send(stream.get(), Make(1, 500));
  EXPECT_TRUE(ack.accepted()) << ack.detail();
  ack = Send(stream.get(), Make(1, 500));
  EXPECT_EQ(ReasonOf(ack), "duplicate");
  ack = Send(stream.get(), Make(1, 500 + 1'000'000'000'000ull));
  EXPECT_EQ(ReasonOf(ack), "frame_window") << ack.detail();
  expected["duplicate"] += 1;
  expected["frame_window"] += 1;

  // Logs are rate limited per reason: 60 more bad poses log at most the burst.
  for (int i = 0; i < 60; ++i) {
    v1::FeatureMessage m = Make(1, 600 + i);
    m.mutable_lidar_pose()->set_x(std::nan(""));
    ASSERT_EQ(ReasonOf(Send(stream.get(), m)), "pose");
  }
  expected["pose"] += 60;
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  const auto fm = Metrics(fusion_ports_.metrics);
  for (const auto& [reason, n] : expected) {
    EXPECT_EQ(SumOf(fm, "qv2x_fusion_rejected_messages_total",
                    {absl::StrCat("reason=\"", reason, "\"")}),
              n)
        << reason;
  }
  EXPECT_EQ(SumOf(fm, "qv2x_fusion_messages_total"), 1);
  int pose_lines = 0;
  for (absl::string_view line : absl::StrSplit(fusion_->Log(), '\n')) {
    if (absl::StrContains(line, ": pose: ")) ++pose_lines;
    EXPECT_LT(line.size(), 1000u) << line.substr(0, 200);
  }
  EXPECT_GE(pose_lines, 3);
  EXPECT_LE(pose_lines, 11) << "log lines for 63 pose rejections";
  EXPECT_TRUE(qv2x::testing::Serving(fusion_ports_.grpc));
}

TEST_F(WireTest, BytesThatAreNoMessageEndTheStreamWithInvalidArgument) {
  StartFusion();
  Connect();
  grpc::GenericStub generic(channel_);
  grpc::ClientContext ctx;
  grpc::CompletionQueue cq;
  auto call = generic.PrepareCall(&ctx, "/qv2x.v1.Fusion/StreamFeatures", &cq);
  auto next = [&] {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(next());
  // Field 1 as a varint whose continuation bits never end: no protobuf parser accepts it.
  const std::string junk = "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
  grpc::Slice slice(junk);
  grpc::ByteBuffer buf(&slice, 1);
  call->Write(buf, reinterpret_cast<void*>(2));
  next();
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(3));
  next();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("is not a qv2x.v1.FeatureMessage"), std::string::npos)
      << status.error_message();
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  const auto fm = Metrics(fusion_ports_.metrics);
  EXPECT_EQ(SumOf(fm, "qv2x_fusion_rejected_messages_total", {"reason=\"unparseable\""}), 1);
  // The service keeps serving well-formed streams.
  grpc::ClientContext ctx2;
  auto stream = stub_->StreamFeatures(&ctx2);
  EXPECT_TRUE(Send(stream.get(), Make(0, 3)).accepted());
}

// One message far ahead, sent before any frame closed, and again while the scene runs:
// the real agents' frames keep being fused, none of their messages late.
TEST_F(WireTest, AFrameIdFarAheadMakesNoLaterFrameLate) {
  StartFusion(0, {"--startup_grace_ms=60000"});
  Connect();
  grpc::ClientContext ctx;
  auto liar = stub_->StreamFeatures(&ctx);
  EXPECT_TRUE(Send(liar.get(), Make(-1, 1'000'000'000'000ull)).accepted())
      << "before any frame, nothing anchors the window";
  for (int id : qv2x::testing::kTinyAgents) StartAgent(id);
  ASSERT_GE(frames_->WaitFor(6, 180).size(), 6u) << Logs();
  const v1::FeatureAck later = Send(liar.get(), Make(-1, 2'000'000'000'000ull));
  EXPECT_EQ(ReasonOf(later), "frame_window") << later.detail();
  const size_t n = frames_->size();
  const auto got = frames_->WaitFor(n + 4, 120);
  ASSERT_GE(got.size(), n + 4) << Logs();
  EXPECT_EQ(qv2x::testing::AgentsOf(got.back()), std::set<int>({0, 1, -1}));
  const auto fm = Metrics(fusion_ports_.metrics);
  EXPECT_EQ(SumOf(fm, "qv2x_fusion_late_messages_total"), 0);
  EXPECT_EQ(SumOf(fm, "qv2x_fusion_discarded_messages_total", {"reason=\"frame_window\""}), 1);
  EXPECT_EQ(SumOf(fm, "qv2x_fusion_rejected_messages_total", {"reason=\"frame_window\""}), 1);
  ctx.TryCancel();  // it never read its frame-closed notices: no graceful finish to wait for
}

}  // namespace
}  // namespace qv2x
