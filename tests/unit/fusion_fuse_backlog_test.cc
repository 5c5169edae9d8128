#include "fusion_server/fuse_backlog.h"

#include <gtest/gtest.h>

namespace qv2x::fusion {
namespace {

ClosedFrame Frame(uint64_t id) {
  ClosedFrame f;
  f.frame_id = id;
  f.has_ego = true;
  return f;
}

std::vector<uint64_t> Ids(const std::vector<ClosedFrame>& frames) {
  std::vector<uint64_t> ids;
  for (const ClosedFrame& f : frames) ids.push_back(f.frame_id);
  return ids;
}

TEST(FuseBacklogTest, KeepsUpWithoutDroppingWhileWithinCapacity) {
  FuseBacklog b(2);
  EXPECT_TRUE(b.Push(Frame(1)).empty());
  EXPECT_TRUE(b.Push(Frame(2)).empty());
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b.Pop()->frame_id, 1u) << "frames are fused in id order";
  EXPECT_EQ(b.Pop()->frame_id, 2u);
  EXPECT_FALSE(b.Pop().has_value());
}

TEST(FuseBacklogTest, FullBacklogPushesOutTheOldestSoTheNewestAreFused) {
  FuseBacklog b(2);
  std::vector<ClosedFrame> dropped;
  for (uint64_t id = 10; id < 17; ++id) {
    for (ClosedFrame& f : b.Push(Frame(id))) dropped.push_back(std::move(f));
    EXPECT_LE(b.size(), 2u) << "bounded after frame " << id;
  }
  EXPECT_EQ(Ids(dropped), std::vector<uint64_t>({10, 11, 12, 13, 14}));
  EXPECT_EQ(b.Pop()->frame_id, 15u);
  EXPECT_EQ(b.Pop()->frame_id, 16u);
}

TEST(FuseBacklogTest, CapacityIsAtLeastOne) {
  FuseBacklog b(0);
  EXPECT_EQ(b.capacity(), 1u);
  EXPECT_TRUE(b.Push(Frame(1)).empty());
  EXPECT_EQ(Ids(b.Push(Frame(2))), std::vector<uint64_t>({1}));
  EXPECT_EQ(b.Pop()->frame_id, 2u);
}

}  // namespace
}  // namespace qv2x::fusion
