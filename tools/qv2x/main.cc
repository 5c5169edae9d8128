// qv2x: the user-facing command-line tool. Subcommands live in cmd_*.cc.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "tools/qv2x/command.h"

namespace {

void PrintTopHelp() {
  std::printf("usage: qv2x <command> [flags]   (qv2x <command> --help for details)\n\ncommands:\n");
  for (const auto& [name, c] : qv2x::cli::Registry()) {
    std::printf("  %-10s %s\n", name.c_str(), c.summary.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    PrintTopHelp();
    return argc < 2 ? 2 : 0;
  }
  auto& reg = qv2x::cli::Registry();
  auto it = reg.find(argv[1]);
  if (it == reg.end()) {
    std::fprintf(stderr, "qv2x: unknown command \"%s\" (qv2x --help lists them)\n", argv[1]);
    return 2;
  }
  auto args = qv2x::cli::Args::Parse(std::vector<std::string>(argv + 2, argv + argc));
  if (!args.ok()) {
    std::fprintf(stderr, "qv2x %s: %s\n", argv[1], std::string(args.status().message()).c_str());
    return 2;
  }
  if (args->Help()) {
    std::printf("%s\n", it->second.usage.c_str());
    return 0;
  }
  try {
    absl::Status st = it->second.run(*args);
    if (!st.ok()) {
      std::fprintf(stderr, "qv2x %s: %s\n", argv[1], std::string(st.message()).c_str());
      return st.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qv2x %s: internal error: %s\n", argv[1], e.what());
    return 1;
  }
  return 0;
}
