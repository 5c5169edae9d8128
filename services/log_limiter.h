// Rate limit for log lines that untrusted input can trigger (e.g. one per rejected message):
// per key (a rejection reason), the first `burst` lines pass, then one per `interval`, each
// saying how many were held back. The counters in /metrics keep every event.
#ifndef QV2X_SERVICES_LOG_LIMITER_H_
#define QV2X_SERVICES_LOG_LIMITER_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "absl/time/time.h"

namespace qv2x::services {

class LogLimiter {
 public:
  explicit LogLimiter(int burst = 10, absl::Duration interval = absl::Seconds(10))
      : burst_(burst), interval_(interval) {}

  // True when a line for `key` may be logged at `now`; then `*held_back` is how many lines
  // for it were suppressed since the last one that passed.
  bool Allow(const std::string& key, absl::Time now, uint64_t* held_back);

 private:
  struct Key {
    int64_t passed = 0;
    uint64_t held_back = 0;
    absl::Time last = absl::InfinitePast();
  };
  const int burst_;
  const absl::Duration interval_;
  std::mutex mu_;
  std::map<std::string, Key> keys_;  // keys are a closed set (reasons), so this stays small
};

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_LOG_LIMITER_H_
