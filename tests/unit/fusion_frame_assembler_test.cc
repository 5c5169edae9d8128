#include "fusion_server/frame_assembler.h"

#include <gtest/gtest.h>

namespace qv2x::fusion {
namespace {

using std::chrono::milliseconds;

class FrameAssemblerTest : public ::testing::Test {
 protected:
  FrameAssemblerTest() : t0_(Clock::now()), a_(Options(), t0_) {}

  static AssemblerOptions Options() {
    AssemblerOptions o;
    o.expected_agents = {0, 1, -1};
    o.ego_id = 0;
    o.deadline = milliseconds(100);
    o.startup_grace = milliseconds(1000);
    return o;
  }
  AddResult Add(int agent, uint64_t frame, int at_ms) {
    ReceivedMessage m;
    m.agent_id = agent;
    m.frame_id = frame;
    m.arrival = t0_ + milliseconds(at_ms);
    return a_.Add(std::move(m));
  }
  std::vector<ClosedFrame> Due(int at_ms) { return a_.TakeDue(t0_ + milliseconds(at_ms)); }

  Clock::time_point t0_;
  FrameAssembler a_;
};

TEST_F(FrameAssemblerTest, FrameClosesWhenEveryAgentArrivedEgoFirst) {
  EXPECT_EQ(Add(1, 5, 0), AddResult::kAccepted);
  EXPECT_EQ(Add(-1, 5, 1), AddResult::kAccepted);
  EXPECT_TRUE(Due(2).empty());
  EXPECT_EQ(Add(0, 5, 3), AddResult::kAccepted);
  const auto due = Due(3);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].frame_id, 5u);
  EXPECT_TRUE(due[0].has_ego);
  EXPECT_EQ(due[0].messages.front().agent_id, 0);
  EXPECT_TRUE(due[0].missing.empty());
  EXPECT_EQ(Add(1, 5, 4), AddResult::kLate);
  EXPECT_EQ(Add(1, 4, 4), AddResult::kLate);
}

TEST_F(FrameAssemblerTest, SlowAgentWaitsForTheDeadlineThenIsMissing) {
  Add(0, 1, 0);
  Add(-1, 1, 0);
  Add(1, 0, 0);  // agent 1 is connected but behind
  // Frame 0 is complete (the others sent later frames); frame 1 waits for agent 1.
  auto due = Due(50);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].frame_id, 0u);
  EXPECT_FALSE(due[0].has_ego);
  EXPECT_EQ(due[0].missing, std::vector<int>({-1, 0}));
  EXPECT_TRUE(Due(99).empty());
  due = Due(100);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].frame_id, 1u);
  EXPECT_EQ(due[0].missing, std::vector<int>({1}));
}

TEST_F(FrameAssemblerTest, DisconnectedAgentIsNotWaitedFor) {
  Add(0, 0, 0);
  Add(1, 0, 0);
  Add(-1, 0, 0);
  ASSERT_EQ(Due(1).size(), 1u);
  a_.SetConnected(1, false);
  Add(0, 1, 2);
  Add(-1, 1, 2);
  const auto due = Due(3);
  ASSERT_EQ(due.size(), 1u) << "no deadline wait for a dead agent";
  EXPECT_EQ(due[0].missing, std::vector<int>({1}));
  EXPECT_EQ(a_.connected_agents(), std::vector<int>({-1, 0}));
}

TEST_F(FrameAssemblerTest, AgentsNotYetConnectedAreAwaitedDuringTheGraceOnly) {
  Add(0, 0, 0);
  Add(1, 0, 0);
  EXPECT_TRUE(Due(500).empty()) << "agent -1 may still be starting";
  const auto due = Due(1000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].missing, std::vector<int>({-1}));
}

TEST_F(FrameAssemblerTest, ClosingAFrameClosesEarlierOnesAndDuplicatesAreRefused) {
  Add(-1, 0, 0);
  EXPECT_EQ(Add(-1, 0, 1), AddResult::kDuplicate);
  for (int id : {0, 1, -1}) Add(id, 3, 2);
  const auto due = Due(3);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].frame_id, 0u);
  EXPECT_EQ(due[1].frame_id, 3u);
  EXPECT_EQ(a_.last_closed(), 3u);
  EXPECT_EQ(a_.pending(), 0u);
  EXPECT_FALSE(a_.NextDeadline().has_value());
}

}  // namespace
}  // namespace qv2x::fusion
