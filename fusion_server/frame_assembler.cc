#include "fusion_server/frame_assembler.h"

#include <algorithm>

namespace qv2x::fusion {

FrameAssembler::FrameAssembler(AssemblerOptions options, Clock::time_point start)
    : options_(std::move(options)), start_(start), last_close_time_(start) {
  for (int id : options_.expected_agents) agents_[id];
}

AddResult FrameAssembler::Add(ReceivedMessage message) {
  if (last_closed_ && message.frame_id <= *last_closed_) return AddResult::kLate;
  if (auto h = Horizon(message.arrival); h && message.frame_id > *h) return AddResult::kOutOfWindow;
  AgentState& agent = agents_[message.agent_id];
  if (agent.link == Link::kNeverSeen) agent.link = Link::kConnected;
  Pending& p = pending_[message.frame_id];
  for (const ReceivedMessage& m : p.messages) {
    if (m.agent_id == message.agent_id) return AddResult::kDuplicate;
  }
  if (p.messages.empty()) p.first_arrival = message.arrival;
  agent.latest = std::max(agent.latest.value_or(0), message.frame_id);
  agent.last_arrival = std::max(agent.last_arrival.value_or(message.arrival), message.arrival);
  if (!all_seen_ && std::none_of(agents_.begin(), agents_.end(),
                                 [](const auto& a) { return a.second.link == Link::kNeverSeen; })) {
    all_seen_ = message.arrival;
  }
  p.messages.push_back(std::move(message));
  return AddResult::kAccepted;
}

std::optional<uint64_t> FrameAssembler::Horizon(Clock::time_point now) const {
  std::optional<uint64_t> anchor = last_closed_;
  if (!anchor && !pending_.empty()) anchor = pending_.begin()->first;
  if (!anchor) return std::nullopt;
  const double elapsed_s = std::chrono::duration<double>(now - last_close_time_).count();
  const double grown = std::max(0.0, elapsed_s * options_.rate_hz);
  const uint64_t allowance =
      options_.max_frames_ahead + static_cast<uint64_t>(std::min(grown, 1e15));
  return *anchor > UINT64_MAX - allowance ? UINT64_MAX : *anchor + allowance;
}

void FrameAssembler::SetConnected(int agent_id, bool connected) {
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) return;
  it->second.link = connected ? Link::kConnected : Link::kDisconnected;
}

std::vector<int> FrameAssembler::connected_agents() const {
  std::vector<int> out;
  for (const auto& [id, a] : agents_) {
    if (a.link == Link::kConnected) out.push_back(id);
  }
  return out;
}

bool FrameAssembler::Complete(uint64_t frame_id, const Pending& p, Clock::time_point now) const {
  const bool in_grace = now - start_ < options_.startup_grace;
  for (const auto& [id, a] : agents_) {
    const bool sent = std::any_of(p.messages.begin(), p.messages.end(),
                                  [id = id](const ReceivedMessage& m) { return m.agent_id == id; });
    if (sent || (a.latest && *a.latest > frame_id) || !Plays(frame_id, id)) continue;
    const bool stalled = a.last_arrival && now - *a.last_arrival >= options_.stall_after;
    if (a.link == Link::kConnected && !stalled) return false;
    if (a.link == Link::kNeverSeen && in_grace) return false;
  }
  return true;
}

bool FrameAssembler::Plays(uint64_t frame_id, int agent_id) const {
  return !options_.plays || options_.plays(frame_id, agent_id);
}

ClosedFrame FrameAssembler::Close(uint64_t frame_id, Pending p) {
  const Clock::time_point first_arrival = p.first_arrival;
  ClosedFrame f;
  f.frame_id = frame_id;
  f.messages = std::move(p.messages);
  // The ego first: fusion runs in its frame.
  std::stable_partition(f.messages.begin(), f.messages.end(),
                        [&](const ReceivedMessage& m) { return m.agent_id == options_.ego_id; });
  f.has_ego = !f.messages.empty() && f.messages.front().agent_id == options_.ego_id;
  for (const auto& [id, a] : agents_) {
    const bool sent = std::any_of(f.messages.begin(), f.messages.end(),
                                  [id = id](const ReceivedMessage& m) { return m.agent_id == id; });
    if (!sent && Plays(frame_id, id)) f.missing.push_back(id);
  }
  last_closed_ = frame_id;
  last_close_time_ = std::max(last_close_time_, first_arrival);
  return f;
}

std::vector<ClosedFrame> FrameAssembler::TakeDue(Clock::time_point now) {
  std::vector<ClosedFrame> out;
  // Before the first close the window's anchor is the lowest pending frame, so a frame that
  // came first and far ahead is only found out of window once later-arriving, lower frames
  // exist: it leaves alone, without closing anything.
  if (!last_closed_) {
    const std::optional<uint64_t> h = Horizon(now);
    while (h && !pending_.empty() && std::prev(pending_.end())->first > *h) {
      auto node = pending_.extract(std::prev(pending_.end()));
      ClosedFrame f;
      f.frame_id = node.key();
      f.messages = std::move(node.mapped().messages);
      f.out_of_window = true;
      // Its senders' latest frames are what they still have pending: a dropped frame must not
      // count as "sent a later one" and stop the scene from waiting for them.
      for (const ReceivedMessage& m : f.messages) {
        AgentState& a = agents_[m.agent_id];
        a.latest.reset();
        for (const auto& [id, p] : pending_) {
          for (const ReceivedMessage& q : p.messages) {
            if (q.agent_id == m.agent_id) a.latest = id;
          }
        }
      }
      out.push_back(std::move(f));
    }
  }
  // The newest frame that may close: complete, or past its deadline (and out of the
  // start-up grace while agents are still expected to appear).
  bool awaiting_start = false;
  if (now - start_ < options_.startup_grace) {
    for (const auto& [id, a] : agents_) awaiting_start |= a.link == Link::kNeverSeen;
  }
  if (!awaiting_start && !started_) started_ = all_seen_.value_or(start_ + options_.startup_grace);
  std::optional<uint64_t> close_through;
  for (const auto& [id, p] : pending_) {
    const bool expired =
        !awaiting_start && now - std::max(p.first_arrival, *started_) >= options_.deadline;
    if (expired || Complete(id, p, now)) close_through = id;
  }
  if (!close_through) return out;
  while (!pending_.empty() && pending_.begin()->first <= *close_through) {
    auto node = pending_.extract(pending_.begin());
    out.push_back(Close(node.key(), std::move(node.mapped())));
  }
  return out;
}

std::optional<Clock::time_point> FrameAssembler::NextDeadline() const {
  std::optional<Clock::time_point> t;
  for (const auto& [id, p] : pending_) {
    const Clock::time_point d =
        std::max(p.first_arrival, started_.value_or(p.first_arrival)) + options_.deadline;
    if (!t || d < *t) t = d;
  }
  return t;
}

}  // namespace qv2x::fusion
