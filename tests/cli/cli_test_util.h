// Shared helpers for the CLI tests: run the built `bin/qv2x` with an argument string and
// capture its exit code, stdout and stderr; a fixture with a fresh temp folder.
#ifndef QV2X_TESTS_CLI_CLI_TEST_UTIL_H_
#define QV2X_TESTS_CLI_CLI_TEST_UTIL_H_

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>

#include "gtest/gtest.h"

namespace qv2x::testing {

struct CliResult {
  int exit_code = -1;  // -1: killed by a signal, or the run could not start
  std::string out, err;

  // Both streams together (stdout first), for checks that do not care which one got it.
  std::string Combined() const { return out + err; }
};

// The qv2x binary of the build under test: $QV2X_BUILD_DIR/bin/qv2x, "build" by default.
inline std::string Qv2xBinary() {
  const char* build = std::getenv("QV2X_BUILD_DIR");
  return std::string(build != nullptr ? build : "build") + "/bin/qv2x";
}

// Runs `qv2x <args>` through /bin/sh, so `args` may carry shell quoting.
inline CliResult RunQv2x(const std::string& args) {
  // `exec` lets the shell become qv2x, so that a signal that kills qv2x shows as one.
  const std::string cmd = "exec '" + Qv2xBinary() + "' " + args;
  CliResult r;
  int out_pipe[2], err_pipe[2];
  if (::pipe(out_pipe) != 0) return r;
  if (::pipe(err_pipe) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return r;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (pid < 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return r;
  }
  // Drain both pipes together: reading one to the end first could deadlock once the
  // other fills up.
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const pollfd& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return r;
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Base fixture: a fresh temp folder per test, and runs of one qv2x subcommand.
class CliTest : public ::testing::Test {
 protected:
  // `command` (e.g. "eval") goes before the arguments of every Run; empty for none.
  explicit CliTest(std::string command = "") : command_(std::move(command)) {}

  void SetUp() override {
    const std::string bin = Qv2xBinary();
    ASSERT_EQ(::access(bin.c_str(), X_OK), 0) << bin << " is not built";
    std::string tmpl = ::testing::TempDir() + "qv2x_cli_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // The temp folder of this test.
  const std::string& dir() const { return dir_; }

  // Writes `text` to `name` inside the temp folder; returns its path.
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // A file's bytes; empty when it cannot be read.
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  CliResult Run(const std::string& args) const {
    return RunQv2x(command_.empty() ? args : command_ + " " + args);
  }

  // A failing run: non-zero exit (not a signal), nothing on stdout, exactly one line on
  // stderr that contains `needle`.
  void ExpectOneLineError(const std::string& args, const std::string& needle) const {
    const CliResult r = Run(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.exit_code, -1) << args << ": killed by a signal";
    EXPECT_TRUE(r.out.empty()) << args << ": " << r.out;
    ASSERT_FALSE(r.err.empty()) << args;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
  }

 private:
  std::string command_;
  std::string dir_;
};

}  // namespace qv2x::testing

#endif  // QV2X_TESTS_CLI_CLI_TEST_UTIL_H_
