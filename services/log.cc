#include "services/log.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace qv2x::services {
namespace {
std::mutex g_mu;
std::string& Name() {
  static auto* n = new std::string("qv2x");
  return *n;
}
}  // namespace

void SetLogName(std::string_view service) {
  std::lock_guard<std::mutex> lock(g_mu);
  Name() = std::string(service);
}

void LogLine(char level, std::string_view message) {
  const std::string t = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "%s %c %s: %.*s\n", t.c_str(), level, Name().c_str(),
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
}

std::string ClipForLog(std::string_view text, size_t max) {
  std::string out;
  const size_t n = std::min(text.size(), max);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  if (text.size() > n) absl::StrAppend(&out, "...(", text.size(), " bytes)");
  return out;
}

}  // namespace qv2x::services
