#include "fusion_server/frame_assembler.h"

#include <gtest/gtest.h>

namespace qv2x::fusion {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

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

// A played-back dataset without agent -1 at odd frames: those close as soon as the others
// are in, without -1 counted missing; even frames still wait for it.
TEST(FrameAssemblerPlaysTest, AgentWithNothingToSendIsNeitherWaitedForNorMissing) {
  const Clock::time_point t0 = Clock::now();
  AssemblerOptions o;
  o.expected_agents = {0, 1, -1};
  o.deadline = milliseconds(100);
  o.plays = [](uint64_t frame, int agent) { return agent != -1 || frame % 2 == 0; };
  FrameAssembler a(o, t0);
  for (int agent : {0, 1, -1}) {
    ReceivedMessage m;
    m.agent_id = agent;
    m.frame_id = 0;
    m.arrival = t0;
    ASSERT_EQ(a.Add(std::move(m)), AddResult::kAccepted);
  }
  for (uint64_t frame : {1, 2}) {
    for (int agent : {0, 1}) {
      ReceivedMessage m;
      m.agent_id = agent;
      m.frame_id = frame;
      m.arrival = t0 + milliseconds(1);
      ASSERT_EQ(a.Add(std::move(m)), AddResult::kAccepted);
    }
  }
  auto due = a.TakeDue(t0 + milliseconds(2));
  ASSERT_EQ(due.size(), 2u) << "frames 0 and 1 complete; 2 waits for -1";
  EXPECT_TRUE(due[1].missing.empty());
  due = a.TakeDue(t0 + milliseconds(101));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].missing, std::vector<int>({-1}));
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

namespace qv2x::fusion {
namespace {

TEST_F(FrameAssemblerTest, AFrameFarAheadIsRefusedAndLeavesLaterFramesOnTime) {
  // Options(): 100 frames ahead at most, no scene clock.
  for (int agent : {0, 1, -1}) Add(agent, 10, 0);
  ASSERT_EQ(Due(1).size(), 1u);  // frame 10 closed: the anchor
  EXPECT_EQ(Add(1, 111, 2), AddResult::kOutOfWindow);
  EXPECT_EQ(Add(1, 1'000'000'000'000ull, 2), AddResult::kOutOfWindow);
  EXPECT_EQ(Add(1, UINT64_MAX, 2), AddResult::kOutOfWindow);
  EXPECT_EQ(Add(1, 110, 2), AddResult::kAccepted);  // the edge of the window
  // Every agent's next frames are not late: the refused ids closed nothing.
  for (int agent : {0, -1}) EXPECT_EQ(Add(agent, 11, 3), AddResult::kAccepted);
  const auto due = Due(4);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].frame_id, 11u);
  EXPECT_EQ(a_.Horizon(t0_ + milliseconds(4)), 111u);
}

TEST(FrameAssemblerWindowTest, TheWindowGrowsWithTheSceneClock) {
  AssemblerOptions o;
  o.expected_agents = {0};
  o.max_frames_ahead = 10;
  o.rate_hz = 10;  // a realtime scene moves 10 frames a second
  const Clock::time_point t0 = Clock::now();
  FrameAssembler a(o, t0);
  ReceivedMessage m;
  m.agent_id = 0;
  m.frame_id = 100;
  m.arrival = t0;
  ASSERT_EQ(a.Add(m), AddResult::kAccepted);
  ASSERT_EQ(a.TakeDue(t0).size(), 1u);
  // 30 s later (fusion was stopped, say) the agents are 300 frames on: still accepted.
  m.frame_id = 400;
  m.arrival = t0 + std::chrono::seconds(30);
  EXPECT_EQ(a.Add(m), AddResult::kAccepted);
  m.frame_id = 100'000;
  EXPECT_EQ(a.Add(m), AddResult::kOutOfWindow);
}

TEST_F(FrameAssemblerTest, AFarFrameThatCameFirstIsDroppedAloneOnceLowerFramesArrive) {
  // Before any frame closed there is no anchor: the first message sets it.
  EXPECT_EQ(Add(1, 5'000'000, 0), AddResult::kAccepted);
  for (int agent : {0, 1, -1}) EXPECT_EQ(Add(agent, 7, 1), AddResult::kAccepted);
  const auto due = Due(2);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].frame_id, 5'000'000u);
  EXPECT_TRUE(due[0].out_of_window);
  EXPECT_EQ(due[1].frame_id, 7u);
  EXPECT_FALSE(due[1].out_of_window);
  EXPECT_EQ(a_.last_closed(), 7u);
  EXPECT_EQ(Add(0, 8, 3), AddResult::kAccepted);  // not late
  EXPECT_EQ(Add(-1, 8, 3), AddResult::kAccepted);
  // Agent 1's dropped frame does not count as having sent frame 8: it is waited for.
  EXPECT_TRUE(Due(4).empty());
}

}  // namespace
}  // namespace qv2x::fusion

namespace qv2x::fusion {
namespace {

TEST(FrameAssemblerStallTest, AConnectedAgentSilentPastStallAfterIsNotWaitedFor) {
  AssemblerOptions o;
  o.expected_agents = {0, 1};
  o.deadline = milliseconds(1000);
  o.stall_after = milliseconds(3000);
  const Clock::time_point t0 = Clock::now();
  FrameAssembler a(o, t0);
  auto add = [&](int agent, uint64_t frame, int at_ms) {
    ReceivedMessage m;
    m.agent_id = agent;
    m.frame_id = frame;
    m.arrival = t0 + milliseconds(at_ms);
    return a.Add(std::move(m));
  };
  add(0, 1, 0);
  add(1, 1, 0);
  ASSERT_EQ(a.TakeDue(t0 + milliseconds(1)).size(), 1u);
  // Agent 1 freezes with its stream open: frame 2 waits its whole deadline...
  add(0, 2, 10);
  EXPECT_TRUE(a.TakeDue(t0 + milliseconds(500)).empty());
  EXPECT_EQ(a.TakeDue(t0 + milliseconds(1010)).size(), 1u);
  // ...but once it has been silent for stall_after, frames close as soon as agent 0 sent.
  add(0, 3, 3100);
  const auto due = a.TakeDue(t0 + milliseconds(3100));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].missing, std::vector<int>({1}));
  // It is waited for again once it speaks.
  add(1, 4, 3200);
  add(0, 5, 3200);
  EXPECT_EQ(a.TakeDue(t0 + milliseconds(3201)).size(), 1u);  // frame 4 only
}

TEST(FrameAssemblerStallTest, FramesThatWaitedForTheLastAgentGetAWholeDeadlineAfterIt) {
  AssemblerOptions o;
  o.expected_agents = {0, 1};
  o.deadline = milliseconds(100);
  o.startup_grace = seconds(30);
  const Clock::time_point t0 = Clock::now();
  FrameAssembler a(o, t0);
  ReceivedMessage m;
  m.agent_id = 0;
  m.frame_id = 1;
  m.arrival = t0;
  a.Add(m);
  m.frame_id = 2;
  a.Add(m);
  EXPECT_TRUE(a.TakeDue(t0 + seconds(5)).empty());  // agent 1 not seen yet
  m.agent_id = 1;
  m.frame_id = 1;
  m.arrival = t0 + seconds(5);
  a.Add(m);
  auto due = a.TakeDue(m.arrival);
  ASSERT_EQ(due.size(), 1u);  // frame 1, complete
  // Frame 2 has waited 5 s, but its deadline runs from agent 1's appearance: its message
  // 30 ms later still makes it.
  EXPECT_TRUE(a.TakeDue(t0 + seconds(5) + milliseconds(30)).empty());
  m.frame_id = 2;
  m.arrival = t0 + seconds(5) + milliseconds(30);
  EXPECT_EQ(a.Add(m), AddResult::kAccepted);
  due = a.TakeDue(m.arrival);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_TRUE(due[0].missing.empty());
}

}  // namespace
}  // namespace qv2x::fusion
