// Sparse messages and zstd dictionaries (issue 13) through real qv2x-fusion and qv2x-agent
// processes on the tiny scene: what agents send, what fusion accepts and refuses, and the
// live SetSparsity switch.
#include <gtest/gtest.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "core/codec/index_codec.h"
#include "core/codec/zstd_dictionary.h"
#include "core/common/file_util.h"
#include "grpcpp/grpcpp.h"
#include "qv2x/v1/agent.grpc.pb.h"
#include "tests/integration/harness/cluster.h"

namespace qv2x {
namespace {

using qv2x::testing::ClusterTest;

const v1::AgentContribution* Contribution(const v1::DetectionFrame& f, int agent) {
  for (const auto& a : f.agents()) {
    if (a.agent_id() == agent) return &a;
  }
  return nullptr;
}

class SparseMessagesTest : public ClusterTest {
 protected:
  // A dictionary file trained on index-map-like symbol streams: which maps it was trained
  // on changes how well it compresses, not whether both sides agree.
  std::string WriteDictionary() {
    std::mt19937 rng(1);
    const codec::IndexGrid g{1, 16, 32, 128};
    std::vector<std::string> samples;
    for (int s = 0; s < 100; ++s) {
      std::vector<int32_t> v(g.cells(), 7);
      for (int k = 0; k < 40; ++k) v[rng() % v.size()] = static_cast<int32_t>(rng() % 128);
      samples.push_back(*codec::RawSymbols(v, g));
    }
    auto dict = codec::ZstdDictionary::Train(samples, 2048, 3);
    EXPECT_TRUE(dict.ok()) << dict.status();
    digest_ = (*dict)->digest();
    const std::string path = dir_ + "/maps.zdict";
    EXPECT_TRUE(WriteFileAtomic(path, (*dict)->bytes()).ok());
    return path;
  }

  std::unique_ptr<v1::AgentControl::Stub> Control(int id) {
    return v1::AgentControl::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", agent_ports_[id].grpc), grpc::InsecureChannelCredentials()));
  }

  std::string digest_;
};

TEST_F(SparseMessagesTest, SparseAgentsSendFewerCellsAndSwitchLive) {
  const std::string dict = WriteDictionary();
  StartFusion(0, {"--zstd_dictionary=" + dict});
  StartAgent(0);
  // --artifacts: control RPCs pass through the confinement wrapper, as in a launched scene.
  StartAgent(1, {"--zstd_dictionary=" + dict, "--sparse_min_span_m=0.3", "--sparse_dilation=1",
                 "--artifacts=" + dir_});
  StartAgent(-1, {"--sparse_min_span_m=0.3", "--sparse_dilation=1"});
  const auto got = frames_->WaitFor(6, 180);
  ASSERT_GE(got.size(), 6u) << Logs();
  for (const auto& f : got) {
    const v1::AgentContribution* ego = Contribution(f, 0);
    const v1::AgentContribution* a1 = Contribution(f, 1);
    ASSERT_TRUE(ego != nullptr && a1 != nullptr) << "frame " << f.frame_id();
    const uint64_t cells = ego->sent_cells();  // dense: the whole map
    EXPECT_GT(cells, 0u);
    EXPECT_TRUE(ego->dictionary_digest().empty());
    EXPECT_GT(a1->sent_cells(), 0u) << "the other vehicle stands within its range";
    EXPECT_LT(a1->sent_cells(), cells) << "flat ground is not sent";
    EXPECT_EQ(a1->dictionary_digest(), digest_);
    EXPECT_EQ(a1->index_count(), a1->sent_cells());  // one level at the tiny preset
  }
  const auto fm = Metrics(fusion_ports_.metrics);
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_rejected_messages_total"), 0) << Logs();
  const auto am = Metrics(agent_ports_[1].metrics);
  const double fraction = qv2x::testing::SumOf(am, "qv2x_agent_sent_cell_fraction");
  EXPECT_GT(fraction, 0);
  EXPECT_LT(fraction, 1);

  // Live: dense again from the reply's frame on; bad settings refused.
  auto stub = Control(1);
  {
    grpc::ClientContext ctx;
    v1::SetSparsityRequest req;
    req.mutable_sparsity()->set_enabled(true);
    req.mutable_sparsity()->set_min_height_span_m(-1);
    v1::ControlReply reply;
    EXPECT_EQ(stub->SetSparsity(&ctx, req, &reply).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  grpc::ClientContext ctx;
  v1::ControlReply reply;
  ASSERT_TRUE(stub->SetSparsity(&ctx, v1::SetSparsityRequest(), &reply).ok());
  EXPECT_FALSE(reply.status().sparsity().enabled());
  EXPECT_EQ(reply.status().dictionary_digest(), digest_);
  const uint64_t from = reply.effective_frame_id();
  const auto after = frames_->WaitFor(got.size() + 6, 180);
  bool checked = false;
  for (const auto& f : after) {
    if (f.frame_id() < from) continue;
    const v1::AgentContribution* a1 = Contribution(f, 1);
    ASSERT_NE(a1, nullptr);
    EXPECT_EQ(a1->sent_cells(), Contribution(f, 0)->sent_cells()) << "frame " << f.frame_id();
    checked = true;
  }
  EXPECT_TRUE(checked) << "no frame after " << from;
}

TEST_F(SparseMessagesTest, ADictionaryFusionDoesNotHoldIsRefusedAndTheOthersFused) {
  const std::string dict = WriteDictionary();
  StartFusion();  // holds no dictionary
  StartAgent(0);
  StartAgent(1, {"--zstd_dictionary=" + dict});
  StartAgent(-1);
  const auto got = frames_->WaitFor(4, 180);
  ASSERT_GE(got.size(), 4u) << Logs();
  for (const auto& f : got) {
    EXPECT_NE(Contribution(f, 0), nullptr);
    EXPECT_NE(Contribution(f, -1), nullptr);
    EXPECT_EQ(Contribution(f, 1), nullptr) << "frame " << f.frame_id();
  }
  const auto fm = Metrics(fusion_ports_.metrics);
  EXPECT_GE(
      qv2x::testing::SumOf(fm, "qv2x_fusion_rejected_messages_total", {"reason=\"dictionary\""}), 4)
      << Logs();
  EXPECT_TRUE(qv2x::testing::Serving(fusion_ports_.grpc));
}

}  // namespace
}  // namespace qv2x
