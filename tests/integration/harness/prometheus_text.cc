#include "tests/integration/harness/prometheus_text.h"

#include <cctype>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace qv2x::testing {
namespace {

bool ValidName(const std::string& n) {
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':') return false;
  }
  return true;
}

std::string NameOf(const std::string& series) { return series.substr(0, series.find('{')); }

}  // namespace

absl::StatusOr<Samples> ParsePrometheusText(const std::string& text) {
  Samples out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const size_t close = line.rfind('}');
    const size_t space = line.find(' ', close == absl::string_view::npos ? 0 : close);
    if (space == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": no value: ", line));
    }
    const std::string series(line.substr(0, space));
    const size_t brace = series.find('{');
    if (!ValidName(series.substr(0, brace)) ||
        (brace != std::string::npos && series.back() != '}')) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": bad series: ", line));
    }
    std::vector<absl::string_view> rest = absl::StrSplit(line.substr(space + 1), ' ');
    double v = 0;
    const std::string value(rest[0]);
    if (!absl::SimpleAtod(value, &v) && value != "+Inf" && value != "-Inf" && value != "NaN") {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": bad value: ", line));
    }
    out[series] = v;
  }
  return out;
}

double SumOf(const Samples& s, const std::string& name, const std::vector<std::string>& labels) {
  double sum = 0;
  for (const auto& [series, v] : s) {
    if (NameOf(series) != name) continue;
    bool all = true;
    for (const std::string& l : labels) all &= series.find(l) != std::string::npos;
    if (all) sum += v;
  }
  return sum;
}

bool HasMetric(const Samples& s, const std::string& name) {
  for (const auto& [series, v] : s) {
    if (NameOf(series) == name) return true;
  }
  return false;
}

}  // namespace qv2x::testing
