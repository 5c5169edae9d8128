#include "core/config/yaml_reader.h"

#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"

namespace qv2x {
namespace {

// How a value appears in an error: scalars quoted as written, collections in flow style.
std::string Describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "an empty value";
  if (node.IsScalar()) return absl::StrCat("\"", node.Scalar(), "\"");
  YAML::Emitter out;
  out << YAML::Flow << node;
  std::string text = out.c_str();
  constexpr size_t kMaxLen = 80;
  if (text.size() > kMaxLen) text = text.substr(0, kMaxLen) + "...";
  return text;
}

std::string Expected(const std::string& what, const YAML::Node& node) {
  return absl::StrCat("expected ", what, ", got ", Describe(node));
}

// Numbers and booleans must be plain scalars: a quoted "8" is a string in YAML.
bool PlainScalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() != "!"; }

bool ParseInt(const YAML::Node& node, int64_t* out) {
  return PlainScalar(node) && absl::SimpleAtoi(node.Scalar(), out);
}

bool ParseDouble(const YAML::Node& node, double* out) {
  return PlainScalar(node) && absl::SimpleAtod(node.Scalar(), out) && std::isfinite(*out);
}

bool ParseBool(const YAML::Node& node, bool* out) {
  if (!PlainScalar(node)) return false;
  const std::string s = absl::AsciiStrToLower(node.Scalar());
  if (s == "true") {
    *out = true;
    return true;
  }
  if (s == "false") {
    *out = false;
    return true;
  }
  return false;
}

std::string JoinPath(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : absl::StrCat(prefix, ".", key);
}

std::string IndexPath(const std::string& path, size_t i) { return absl::StrCat(path, "[", i, "]"); }

absl::StatusOr<YAML::Node> LoadDocument(const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        origin, ": expected a mapping at the top of the document, got ", Describe(root)));
  }
  return root;
}

}  // namespace

YamlReader::YamlReader(YAML::Node node, std::string path)
    : node_(std::move(node)),
      path_(std::move(path)),
      read_(std::make_shared<std::set<std::string>>()),
      ignored_(std::make_shared<std::set<std::string>>()) {}

absl::StatusOr<YamlReader> YamlReader::FromFile(const std::string& file) {
  QV2X_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  QV2X_ASSIGN_OR_RETURN(YAML::Node root, LoadDocument(text, file));
  return YamlReader(root, "");
}

absl::StatusOr<YamlReader> YamlReader::FromString(const std::string& text) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node root, LoadDocument(text, "<yaml>"));
  return YamlReader(root, "");
}

YamlReader YamlReader::Sub(YAML::Node node, std::string path) const {
  YamlReader sub(std::move(node), std::move(path));
  sub.read_ = read_;
  sub.ignored_ = ignored_;
  return sub;
}

bool YamlReader::Has(const std::string& key) const {
  const YAML::Node& cn = node_;
  return cn.IsMap() && cn[key].IsDefined();
}

std::string YamlReader::KeyPath(const std::string& key) const { return JoinPath(path_, key); }

absl::Status YamlReader::Error(const std::string& key, const std::string& what) const {
  return absl::InvalidArgumentError(absl::StrCat(KeyPath(key), ": ", what));
}

absl::StatusOr<YAML::Node> YamlReader::Child(const std::string& key) {
  read_->insert(KeyPath(key));
  const YAML::Node& cn = node_;
  YAML::Node child = cn.IsMap() ? cn[key] : YAML::Node(YAML::NodeType::Undefined);
  if (!child.IsDefined()) return Error(key, "required key is missing");
  return child;
}

absl::StatusOr<YAML::Node> YamlReader::Sequence(const std::string& key, int size,
                                                const char* what) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  const bool ok =
      n.IsSequence() && n.size() > 0 && (size < 0 || n.size() == static_cast<size_t>(size));
  if (!ok) {
    const std::string expect = size < 0 ? absl::StrCat("a non-empty list of ", what)
                                        : absl::StrCat("a list of ", size, " ", what);
    return Error(key, Expected(expect, n));
  }
  return n;
}

absl::StatusOr<double> YamlReader::Double(const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  double v = 0;
  if (!ParseDouble(n, &v)) return Error(key, Expected("a number", n));
  return v;
}

absl::StatusOr<double> YamlReader::PositiveDouble(const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  double v = 0;
  if (!ParseDouble(n, &v) || v <= 0) return Error(key, Expected("a positive number", n));
  return v;
}

absl::StatusOr<double> YamlReader::NonNegativeDouble(const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  double v = 0;
  if (!ParseDouble(n, &v) || v < 0) return Error(key, Expected("a non-negative number", n));
  return v;
}

absl::StatusOr<double> YamlReader::DoubleInRange(const std::string& key, double lo, double hi) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  double v = 0;
  if (!ParseDouble(n, &v) || v < lo || v > hi) {
    return Error(key, Expected(absl::StrCat("a number in [", lo, ", ", hi, "]"), n));
  }
  return v;
}

absl::StatusOr<int64_t> YamlReader::Int(const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  int64_t v = 0;
  if (!ParseInt(n, &v)) return Error(key, Expected("an integer", n));
  return v;
}

absl::StatusOr<int64_t> YamlReader::PositiveInt(const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  int64_t v = 0;
  if (!ParseInt(n, &v) || v <= 0) return Error(key, Expected("a positive integer", n));
  return v;
}

absl::StatusOr<int64_t> YamlReader::NonNegativeInt(const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  int64_t v = 0;
  if (!ParseInt(n, &v) || v < 0) return Error(key, Expected("a non-negative integer", n));
  return v;
}

absl::StatusOr<int64_t> YamlReader::IntInRange(const std::string& key, int64_t lo, int64_t hi) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  int64_t v = 0;
  if (!ParseInt(n, &v) || v < lo || v > hi) {
    return Error(key, Expected(absl::StrCat("an integer in [", lo, ", ", hi, "]"), n));
  }
  return v;
}

absl::StatusOr<bool> YamlReader::Bool(const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  bool v = false;
  if (!ParseBool(n, &v)) return Error(key, Expected("true or false", n));
  return v;
}

absl::StatusOr<std::string> YamlReader::String(const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  if (!n.IsScalar()) return Error(key, Expected("a string", n));
  return n.Scalar();
}

absl::StatusOr<std::string> YamlReader::Enum(const std::string& key,
                                             const std::vector<std::string>& allowed) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  if (n.IsScalar()) {
    for (const std::string& a : allowed) {
      if (n.Scalar() == a) return a;
    }
  }
  return Error(key, Expected(absl::StrCat("one of {", absl::StrJoin(allowed, ", "), "}"), n));
}

absl::StatusOr<std::vector<double>> YamlReader::Doubles(const std::string& key, int size) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Sequence(key, size, "numbers"));
  std::vector<double> out(n.size());
  for (size_t i = 0; i < n.size(); ++i) {
    if (!ParseDouble(n[i], &out[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(IndexPath(KeyPath(key), i), ": ", Expected("a number", n[i])));
    }
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> YamlReader::Ints(const std::string& key, int size) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Sequence(key, size, "integers"));
  std::vector<int64_t> out(n.size());
  for (size_t i = 0; i < n.size(); ++i) {
    if (!ParseInt(n[i], &out[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(IndexPath(KeyPath(key), i), ": ", Expected("an integer", n[i])));
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> YamlReader::Strings(const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Sequence(key, -1, "strings"));
  std::vector<std::string> out(n.size());
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) {
      return absl::InvalidArgumentError(
          absl::StrCat(IndexPath(KeyPath(key), i), ": ", Expected("a string", n[i])));
    }
    out[i] = n[i].Scalar();
  }
  return out;
}

absl::StatusOr<double> YamlReader::DoubleOr(const std::string& key, double dflt) {
  if (!Has(key)) {
    read_->insert(KeyPath(key));
    return dflt;
  }
  return Double(key);
}

absl::StatusOr<int64_t> YamlReader::IntOr(const std::string& key, int64_t dflt) {
  if (!Has(key)) {
    read_->insert(KeyPath(key));
    return dflt;
  }
  return Int(key);
}

absl::StatusOr<bool> YamlReader::BoolOr(const std::string& key, bool dflt) {
  if (!Has(key)) {
    read_->insert(KeyPath(key));
    return dflt;
  }
  return Bool(key);
}

absl::StatusOr<std::string> YamlReader::StringOr(const std::string& key, const std::string& dflt) {
  if (!Has(key)) {
    read_->insert(KeyPath(key));
    return dflt;
  }
  return String(key);
}

absl::StatusOr<YamlReader> YamlReader::Map(const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Child(key));
  if (!n.IsMap()) return Error(key, Expected("a mapping", n));
  return Sub(n, KeyPath(key));
}

absl::StatusOr<std::vector<YamlReader>> YamlReader::MapList(const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YAML::Node n, Sequence(key, -1, "mappings"));
  std::vector<YamlReader> out;
  out.reserve(n.size());
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string item_path = IndexPath(KeyPath(key), i);
    if (!n[i].IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(item_path, ": ", Expected("a mapping", n[i])));
    }
    out.push_back(Sub(n[i], item_path));
  }
  return out;
}

void YamlReader::Ignore(const std::string& key) {
  read_->insert(KeyPath(key));
  ignored_->insert(KeyPath(key));
}

void YamlReader::FinishInto(const YAML::Node& node, const std::string& path,
                            std::vector<std::string>* problems) const {
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : Describe(kv.first);
    const std::string full = JoinPath(path, key);
    if (!seen.insert(key).second) {
      problems->push_back(absl::StrCat(full, ": duplicate key"));
      continue;
    }
    if (read_->count(full) == 0) {
      problems->push_back(absl::StrCat(full, ": unknown key"));
      continue;
    }
    if (ignored_->count(full) > 0) continue;
    const YAML::Node& value = kv.second;
    if (value.IsMap()) {
      FinishInto(value, full, problems);
    } else if (value.IsSequence()) {
      for (size_t i = 0; i < value.size(); ++i) {
        if (value[i].IsMap()) FinishInto(value[i], IndexPath(full, i), problems);
      }
    }
  }
}

absl::Status YamlReader::Finish() const {
  std::vector<std::string> problems;
  if (node_.IsMap()) FinishInto(node_, path_, &problems);
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "; "));
}

namespace {

// One dotted segment of an override path: `name` followed by zero or more `[i]`.
struct PathSegment {
  std::string name;
  std::vector<size_t> indices;
};

absl::StatusOr<std::vector<PathSegment>> SplitOverridePath(const std::string& path,
                                                           const std::string& context) {
  std::vector<PathSegment> out;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    PathSegment seg;
    const size_t bracket = part.find('[');
    seg.name = std::string(part.substr(0, bracket));
    bool ok = !seg.name.empty();
    absl::string_view rest = bracket == absl::string_view::npos ? "" : part.substr(bracket);
    while (ok && !rest.empty()) {
      const size_t close = rest.find(']');
      size_t index = 0;
      ok = rest[0] == '[' && close != absl::string_view::npos &&
           absl::SimpleAtoi(rest.substr(1, close - 1), &index);
      if (ok) {
        seg.indices.push_back(index);
        rest.remove_prefix(close + 1);
      }
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(context, ": malformed key path \"", path, "\""));
    }
    out.push_back(std::move(seg));
  }
  return out;
}

}  // namespace

absl::Status ApplyOverride(YAML::Node& root, const std::string& assignment) {
  const std::string context = absl::StrCat("--set ", assignment);
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": expected key.path=value"));
  }
  const std::string path(absl::StripAsciiWhitespace(assignment.substr(0, eq)));
  const std::string text = assignment.substr(eq + 1);
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": empty value"));
  }
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": cannot parse the value as YAML: ", e.msg));
  }
  QV2X_ASSIGN_OR_RETURN(std::vector<PathSegment> segments, SplitOverridePath(path, context));

  auto missing = [&](const std::string& at) {
    return absl::InvalidArgumentError(absl::StrCat(
        at, ": no such key in the config (--set only replaces existing keys; from ", context, ")"));
  };
  // `cur` is rebound with reset(): assigning one yaml-cpp Node to another would overwrite
  // the document instead of moving the cursor.
  YAML::Node cur;
  cur.reset(root);
  std::string at;
  for (size_t s = 0; s < segments.size(); ++s) {
    const PathSegment& seg = segments[s];
    at = JoinPath(at, seg.name);
    const YAML::Node& ccur = cur;
    if (!ccur.IsMap() || !ccur[seg.name].IsDefined()) return missing(at);
    const bool last_segment = s + 1 == segments.size();
    if (last_segment && seg.indices.empty()) {
      cur[seg.name] = value;
      return absl::OkStatus();
    }
    YAML::Node next = ccur[seg.name];
    cur.reset(next);
    for (size_t k = 0; k < seg.indices.size(); ++k) {
      const size_t i = seg.indices[k];
      at = IndexPath(at, i);
      const YAML::Node& cseq = cur;
      if (!cseq.IsSequence() || i >= cseq.size()) return missing(at);
      if (last_segment && k + 1 == seg.indices.size()) {
        cur[i] = value;
        return absl::OkStatus();
      }
      YAML::Node elem = cseq[i];
      cur.reset(elem);
    }
  }
  return absl::OkStatus();
}

}  // namespace qv2x
