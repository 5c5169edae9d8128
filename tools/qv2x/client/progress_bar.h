// A one-line progress display: redrawn in place on a terminal, plain lines otherwise.
#ifndef QV2X_TOOLS_QV2X_CLIENT_PROGRESS_BAR_H_
#define QV2X_TOOLS_QV2X_CLIENT_PROGRESS_BAR_H_

#include <cstdint>
#include <string>

namespace qv2x::cli {

class ProgressBar {
 public:
  ProgressBar();
  // `done` of `total` steps, `elapsed_s` since start, `detail` e.g. "loss 0.42".
  void Update(int64_t done, int64_t total, double elapsed_s, const std::string& detail);
  // Prints a line of its own (an event) without breaking the bar.
  void Event(const std::string& line);
  void Finish();

 private:
  bool tty_;
  bool drawn_ = false;
  int64_t last_plain_ = -1;
};

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_CLIENT_PROGRESS_BAR_H_
