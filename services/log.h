// One-line structured log records on stderr: time, service, level, message.
#ifndef QV2X_SERVICES_LOG_H_
#define QV2X_SERVICES_LOG_H_

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace qv2x::services {

void SetLogName(std::string_view service);
void LogLine(char level, std::string_view message);

template <typename... Args>
void LogInfo(const Args&... args) {
  LogLine('I', absl::StrCat(args...));
}
template <typename... Args>
void LogWarning(const Args&... args) {
  LogLine('W', absl::StrCat(args...));
}
template <typename... Args>
void LogError(const Args&... args) {
  LogLine('E', absl::StrCat(args...));
}

// Untrusted text for a log line or a reply: at most `max` bytes, non-printable bytes as \xNN,
// and how much was left out, so that no input is echoed back unbounded.
std::string ClipForLog(std::string_view text, size_t max = 64);

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_LOG_H_
