#include "fusion_server/fuse_backlog.h"

#include <algorithm>

namespace qv2x::fusion {

FuseBacklog::FuseBacklog(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

std::vector<ClosedFrame> FuseBacklog::Push(ClosedFrame frame) {
  frames_.push_back(std::move(frame));
  std::vector<ClosedFrame> dropped;
  while (frames_.size() > capacity_) {
    dropped.push_back(std::move(frames_.front()));
    frames_.pop_front();
  }
  return dropped;
}

std::optional<ClosedFrame> FuseBacklog::Pop() {
  if (frames_.empty()) return std::nullopt;
  ClosedFrame f = std::move(frames_.front());
  frames_.pop_front();
  return f;
}

}  // namespace qv2x::fusion
