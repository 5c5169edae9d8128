#include "fusion_server/frame_assembler.h"

#include <algorithm>

namespace qv2x::fusion {

FrameAssembler::FrameAssembler(AssemblerOptions options, Clock::time_point start)
    : options_(std::move(options)), start_(start) {
  for (int id : options_.expected_agents) agents_[id];
}

AddResult FrameAssembler::Add(ReceivedMessage message) {
  if (last_closed_ && message.frame_id <= *last_closed_) return AddResult::kLate;
  AgentState& agent = agents_[message.agent_id];
  if (agent.link == Link::kNeverSeen) agent.link = Link::kConnected;
  Pending& p = pending_[message.frame_id];
  for (const ReceivedMessage& m : p.messages) {
    if (m.agent_id == message.agent_id) return AddResult::kDuplicate;
  }
  if (p.messages.empty()) p.first_arrival = message.arrival;
  agent.latest = std::max(agent.latest.value_or(0), message.frame_id);
  p.messages.push_back(std::move(message));
  return AddResult::kAccepted;
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
    if (sent || (a.latest && *a.latest > frame_id)) continue;
    if (a.link == Link::kConnected) return false;
    if (a.link == Link::kNeverSeen && in_grace) return false;
  }
  return true;
}

ClosedFrame FrameAssembler::Close(uint64_t frame_id, Pending p) {
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
    if (!sent) f.missing.push_back(id);
  }
  last_closed_ = frame_id;
  return f;
}

std::vector<ClosedFrame> FrameAssembler::TakeDue(Clock::time_point now) {
  // The newest frame that may close: complete, or past its deadline (and out of the
  // start-up grace while agents are still expected to appear).
  bool awaiting_start = false;
  if (now - start_ < options_.startup_grace) {
    for (const auto& [id, a] : agents_) awaiting_start |= a.link == Link::kNeverSeen;
  }
  std::optional<uint64_t> close_through;
  for (const auto& [id, p] : pending_) {
    const bool expired = !awaiting_start && now - p.first_arrival >= options_.deadline;
    if (expired || Complete(id, p, now)) close_through = id;
  }
  std::vector<ClosedFrame> out;
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
    const Clock::time_point d = p.first_arrival + options_.deadline;
    if (!t || d < *t) t = d;
  }
  return t;
}

}  // namespace qv2x::fusion
