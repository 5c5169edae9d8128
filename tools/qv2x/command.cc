#include "tools/qv2x/command.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace qv2x::cli {

absl::StatusOr<Args> Args::Parse(const std::vector<std::string>& argv) {
  Args a;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& s = argv[i];
    if (s == "--help" || s == "-h") {
      a.help_ = true;
    } else if (s.rfind("--", 0) == 0 && s.size() > 2) {
      const size_t eq = s.find('=');
      if (eq != std::string::npos) {
        a.flags_.emplace(s.substr(2, eq - 2), s.substr(eq + 1));
      } else if (i + 1 < argv.size() && argv[i + 1].rfind("--", 0) != 0) {
        a.flags_.emplace(s.substr(2), argv[++i]);
      } else {
        a.flags_.emplace(s.substr(2), std::nullopt);
      }
    } else {
      a.positional_.push_back(s);
    }
  }
  return a;
}

std::vector<std::string> Args::All(const std::string& name) {
  used_.push_back(name);
  std::vector<std::string> out;
  auto [b, e] = flags_.equal_range(name);
  for (auto it = b; it != e; ++it) {
    if (it->second) out.push_back(*it->second);
  }
  return out;
}

std::optional<std::string> Args::Get(const std::string& name) {
  used_.push_back(name);
  auto it = flags_.find(name);
  if (it == flags_.end()) return std::nullopt;
  return it->second ? it->second : std::optional<std::string>("");
}

absl::StatusOr<std::string> Args::Required(const std::string& name) {
  auto v = Get(name);
  if (!v || v->empty()) return absl::InvalidArgumentError(absl::StrCat("--", name, " is required"));
  return *v;
}

std::string Args::GetOr(const std::string& name, const std::string& dflt) {
  auto v = Get(name);
  return v && !v->empty() ? *v : dflt;
}

absl::StatusOr<int64_t> Args::IntOr(const std::string& name, int64_t dflt) {
  auto v = Get(name);
  if (!v) return dflt;
  int64_t out;
  if (!absl::SimpleAtoi(*v, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": expected an integer, got \"", *v, "\""));
  }
  return out;
}

absl::StatusOr<double> Args::DoubleOr(const std::string& name, double dflt) {
  auto v = Get(name);
  if (!v) return dflt;
  double out;
  if (!absl::SimpleAtod(*v, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": expected a number, got \"", *v, "\""));
  }
  return out;
}

bool Args::Switch(const std::string& name) {
  used_.push_back(name);
  return flags_.count(name) > 0;
}

absl::Status Args::Finish() const {
  std::vector<std::string> unknown;
  for (const auto& [k, v] : flags_) {
    if (std::find(used_.begin(), used_.end(), k) == used_.end()) unknown.push_back("--" + k);
  }
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown flag ", absl::StrJoin(unknown, ", ")));
  }
  return absl::OkStatus();
}

std::map<std::string, Command>& Registry() {
  static auto* r = new std::map<std::string, Command>();
  return *r;
}

Registration::Registration(Command c) { Registry()[c.name] = std::move(c); }

}  // namespace qv2x::cli
