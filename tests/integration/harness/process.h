// Real processes for integration tests: start a built server binary on 127.0.0.1, learn its
// ports, stop it with SIGTERM (or kill it), and never leave it behind.
#ifndef QV2X_TESTS_INTEGRATION_HARNESS_PROCESS_H_
#define QV2X_TESTS_INTEGRATION_HARNESS_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qv2x::testing {

// The build folder (ctest sets QV2X_BUILD_DIR) and a fresh temporary folder.
std::string BuildDir();
std::string MakeTempDir(const std::string& prefix);

class ChildProcess {
 public:
  // argv[0] is a path; stdout and stderr go to `log_path`.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                             const std::string& log_path);
  ~ChildProcess();  // SIGKILL if still running

  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // Exit code (or 128 + signal); -1 when it did not exit within `timeout_s`.
  int Wait(double timeout_s);
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  bool exited_ = false;
  std::string log_path_;
};

struct Ports {
  int grpc = 0, metrics = 0;
};
// Waits until `path` (a server's --port_file) holds "<grpc> <metrics>".
absl::StatusOr<Ports> WaitForPortFile(const std::string& path, double timeout_s,
                                      ChildProcess* process);

// Processes (other than this one) whose command line mentions `needle`, e.g. a run folder
// that every service of a scene has in its arguments.
std::vector<int> ProcessesWith(const std::string& needle);
// Waits up to `timeout_s` for ProcessesWith(needle) to be empty.
bool NoneLeft(const std::string& needle, double timeout_s);

// GET http://127.0.0.1:<port><path> over a plain socket; the body.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

}  // namespace qv2x::testing

#endif  // QV2X_TESTS_INTEGRATION_HARNESS_PROCESS_H_
