#include "services/log_limiter.h"

namespace qv2x::services {

bool LogLimiter::Allow(const std::string& key, absl::Time now, uint64_t* held_back) {
  std::lock_guard<std::mutex> lock(mu_);
  Key& k = keys_[key];
  if (k.passed >= burst_ && now - k.last < interval_) {
    ++k.held_back;
    return false;
  }
  ++k.passed;
  k.last = now;
  *held_back = k.held_back;
  k.held_back = 0;
  return true;
}

}  // namespace qv2x::services
