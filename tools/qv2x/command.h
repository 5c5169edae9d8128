// Subcommand registry and a small flag parser for the `qv2x` CLI. Each cmd_*.cc file
// registers its subcommand with a static Registration object.
#ifndef QV2X_TOOLS_QV2X_COMMAND_H_
#define QV2X_TOOLS_QV2X_COMMAND_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace qv2x::cli {

// Parsed `--flag value`, `--flag=value` and bare `--switch` arguments. Positional
// arguments are kept in order. Unknown flags are an error at Finish().
class Args {
 public:
  static absl::StatusOr<Args> Parse(const std::vector<std::string>& argv);

  bool Help() const { return help_; }
  // Values of a flag that may repeat (e.g. --set a=1 --set b=2).
  std::vector<std::string> All(const std::string& name);
  std::optional<std::string> Get(const std::string& name);
  absl::StatusOr<std::string> Required(const std::string& name);
  std::string GetOr(const std::string& name, const std::string& dflt);
  absl::StatusOr<int64_t> IntOr(const std::string& name, int64_t dflt);
  absl::StatusOr<double> DoubleOr(const std::string& name, double dflt);
  bool Switch(const std::string& name);  // present without a value
  const std::vector<std::string>& positional() const { return positional_; }
  // InvalidArgument naming any flag that no accessor asked for.
  absl::Status Finish() const;

 private:
  std::multimap<std::string, std::optional<std::string>> flags_;
  std::vector<std::string> positional_;
  std::vector<std::string> used_;
  bool help_ = false;
};

struct Command {
  std::string name;     // e.g. "sim"
  std::string summary;  // one line for `qv2x --help`
  std::string usage;    // full --help text
  // Returns the process exit code. Errors are printed by the runner as one line.
  std::function<absl::Status(Args&)> run;
};

std::map<std::string, Command>& Registry();

struct Registration {
  explicit Registration(Command c);
};

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_COMMAND_H_
