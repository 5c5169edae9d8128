// Groups validated agent messages into frames by frame id and decides when a frame is
// due. Each agent sends increasing frame ids, so a frame is complete once every
// connected agent has sent it or a later one; otherwise it waits for its deadline (from
// its first message). An agent that never connected is waited for during a start-up
// grace only, and a disconnected one not at all, so a dead agent never stalls the scene.
// Frames close in id order; a message for a closed frame is late. A frame id far ahead of
// the scene's is refused, so that one message cannot close every frame before it and make
// every later message late: the window is `max_frames_ahead` beyond the last closed frame
// (before the first, the lowest pending one), growing with the scene clock since then.
#ifndef QV2X_FUSION_SERVER_FRAME_ASSEMBLER_H_
#define QV2X_FUSION_SERVER_FRAME_ASSEMBLER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/geometry/transform.h"
#include "qv2x/v1/features.pb.h"

namespace qv2x::fusion {

using Clock = std::chrono::steady_clock;

// A message that passed validation, its index map decoded.
struct ReceivedMessage {
  int agent_id = 0;
  uint64_t frame_id = 0;
  int64_t capture_time_ns = 0;
  Pose lidar_pose;
  std::vector<int32_t> indices;  // [levels, h, w] of the model's grid
  std::string codebook_digest;   // the codebook that decodes them
  v1::AgentContribution contribution;
  Clock::time_point arrival;
};

struct AssemblerOptions {
  std::vector<int> expected_agents;
  int ego_id = 0;
  Clock::duration deadline = std::chrono::milliseconds(300);
  Clock::duration startup_grace = std::chrono::seconds(30);
  uint64_t max_frames_ahead = 100;
  // A connected agent silent this long is not waited for (as if disconnected) until it
  // sends again, so a frozen agent whose stream stays open does not hold every frame to
  // its deadline.
  Clock::duration stall_after = std::chrono::seconds(30);
  double rate_hz = 0;  // scene frames per second; 0: the window does not grow with time
  // Whether an agent has anything to send at a frame (a dataset played back lists some
  // agents at some instants only); those that have not are neither waited for nor missing.
  // Empty: every agent always has.
  std::function<bool(uint64_t frame_id, int agent_id)> plays;
};

struct ClosedFrame {
  uint64_t frame_id = 0;
  std::vector<ReceivedMessage> messages;  // the ego's first when present
  std::vector<int> missing;               // expected agents without a message
  bool has_ego = false;
  // Refused after the fact: it arrived before any frame closed and lies beyond the window
  // of the frames that came after it. Not fused and not counted as closed.
  bool out_of_window = false;
};

enum class AddResult { kAccepted, kDuplicate, kLate, kOutOfWindow };

class FrameAssembler {
 public:
  FrameAssembler(AssemblerOptions options, Clock::time_point start);

  AddResult Add(ReceivedMessage message);
  void SetConnected(int agent_id, bool connected);

  // Frames that are complete or past their deadline, in frame-id order. Closing a frame
  // closes every earlier pending one too (no agent will send them any more).
  std::vector<ClosedFrame> TakeDue(Clock::time_point now);
  // When the earliest pending frame expires; nullopt when nothing is pending.
  std::optional<Clock::time_point> NextDeadline() const;

  std::optional<uint64_t> last_closed() const { return last_closed_; }
  // The highest frame id accepted at `now`; nullopt: no limit yet (nothing seen).
  std::optional<uint64_t> Horizon(Clock::time_point now) const;
  size_t pending() const { return pending_.size(); }
  std::vector<int> connected_agents() const;

 private:
  enum class Link { kNeverSeen, kConnected, kDisconnected };
  struct AgentState {
    Link link = Link::kNeverSeen;
    std::optional<uint64_t> latest;  // highest frame id received
    std::optional<Clock::time_point> last_arrival;
  };
  struct Pending {
    Clock::time_point first_arrival;
    std::vector<ReceivedMessage> messages;
  };

  bool Complete(uint64_t frame_id, const Pending& p, Clock::time_point now) const;
  ClosedFrame Close(uint64_t frame_id, Pending p);
  bool Plays(uint64_t frame_id, int agent_id) const;

  AssemblerOptions options_;
  Clock::time_point start_;
  std::map<int, AgentState> agents_;
  std::map<uint64_t, Pending> pending_;
  std::optional<uint64_t> last_closed_;
  Clock::time_point last_close_time_;  // start_ until the first frame closes
  // When the start-up wait for never-seen agents ended: deadlines run from then at the
  // earliest, so frames that waited for the last agent are not closed the moment it comes.
  std::optional<Clock::time_point> started_;
  std::optional<Clock::time_point> all_seen_;  // the first message of the last agent to appear
};

}  // namespace qv2x::fusion

#endif  // QV2X_FUSION_SERVER_FRAME_ASSEMBLER_H_
