// Closed frames waiting for the fuse thread. When fusing is slower than frames close, a
// FIFO would grow without bound and every frame would wait longer than the one before;
// instead, past `capacity` waiting frames the oldest are pushed out, so memory stays
// bounded and what gets fused is the newest (the caller counts and logs what is dropped).
#ifndef QV2X_FUSION_SERVER_FUSE_BACKLOG_H_
#define QV2X_FUSION_SERVER_FUSE_BACKLOG_H_

#include <cstddef>
#include <deque>
#include <optional>
#include <vector>

#include "fusion_server/frame_assembler.h"

namespace qv2x::fusion {

class FuseBacklog {
 public:
  explicit FuseBacklog(size_t capacity);  // at least 1

  // Queues `frame` (frames close in id order); returns the frames it pushed out, oldest
  // first.
  std::vector<ClosedFrame> Push(ClosedFrame frame);
  // The oldest frame still waiting; nullopt when none is.
  std::optional<ClosedFrame> Pop();

  size_t size() const { return frames_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  size_t capacity_;
  std::deque<ClosedFrame> frames_;
};

}  // namespace qv2x::fusion

#endif  // QV2X_FUSION_SERVER_FUSE_BACKLOG_H_
