#include "tools/qv2x/client/progress_bar.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"

namespace qv2x::cli {

ProgressBar::ProgressBar() : tty_(::isatty(::fileno(stdout)) != 0) {}

void ProgressBar::Update(int64_t done, int64_t total, double elapsed_s, const std::string& detail) {
  const double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0.0;
  const double eta = done > 0 ? elapsed_s * (1.0 - frac) / frac : 0.0;
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(filled, '#');
    bar.resize(kWidth, '.');
    std::printf("\r[%s] %5.1f%% %lld/%lld  %s  ETA %.0fs\x1b[K", bar.c_str(), 100 * frac,
                static_cast<long long>(done), static_cast<long long>(total), detail.c_str(), eta);
    std::fflush(stdout);
    drawn_ = true;
    return;
  }
  // Plain output: at most one line per 5 % of the run (and the last step).
  const int64_t bucket = total > 0 ? done * 20 / total : done;
  if (bucket == last_plain_ && done != total) return;
  last_plain_ = bucket;
  std::printf("step %lld/%lld (%.0f%%) %s eta %.0fs\n", static_cast<long long>(done),
              static_cast<long long>(total), 100 * frac, detail.c_str(), eta);
  std::fflush(stdout);
}

void ProgressBar::Event(const std::string& line) {
  if (tty_ && drawn_) std::printf("\r\x1b[K");
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  drawn_ = false;
}

void ProgressBar::Finish() {
  if (tty_ && drawn_) std::printf("\n");
  drawn_ = false;
}

}  // namespace qv2x::cli
