// Typed, path-aware access to a YAML mapping. Every error names the full key path and the
// offending value, e.g. `train_params.batch_size: expected a positive integer, got "eight"`.
// Keys that were never read are reported by Finish(), so a misspelt key is an error.
// Readers returned by Map()/MapList() share the read-key bookkeeping of their parent, so
// one Finish() at the root checks the whole document.
#ifndef QV2X_CORE_CONFIG_YAML_READER_H_
#define QV2X_CORE_CONFIG_YAML_READER_H_

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace qv2x {

class YamlReader {
 public:
  // `path` is the dotted prefix of this node ("" at the document root).
  YamlReader(YAML::Node node, std::string path);

  static absl::StatusOr<YamlReader> FromFile(const std::string& file);
  static absl::StatusOr<YamlReader> FromString(const std::string& text);

  const std::string& path() const { return path_; }
  bool Has(const std::string& key) const;

  // Required scalars. Each marks the key as read.
  absl::StatusOr<double> Double(const std::string& key);
  absl::StatusOr<double> PositiveDouble(const std::string& key);
  absl::StatusOr<double> NonNegativeDouble(const std::string& key);
  absl::StatusOr<int64_t> Int(const std::string& key);
  absl::StatusOr<int64_t> PositiveInt(const std::string& key);
  absl::StatusOr<int64_t> NonNegativeInt(const std::string& key);
  // Inclusive ranges: `expected an integer in [1, 3], got "4"`.
  absl::StatusOr<int64_t> IntInRange(const std::string& key, int64_t lo, int64_t hi);
  absl::StatusOr<double> DoubleInRange(const std::string& key, double lo, double hi);
  absl::StatusOr<bool> Bool(const std::string& key);
  absl::StatusOr<std::string> String(const std::string& key);
  // A string that must be one of `allowed`.
  absl::StatusOr<std::string> Enum(const std::string& key, const std::vector<std::string>& allowed);
  // Sequences; `size` < 0 means any non-empty length.
  absl::StatusOr<std::vector<double>> Doubles(const std::string& key, int size = -1);
  absl::StatusOr<std::vector<int64_t>> Ints(const std::string& key, int size = -1);
  absl::StatusOr<std::vector<std::string>> Strings(const std::string& key);

  // Optional variants: the default when the key is absent, an error when present but bad.
  absl::StatusOr<double> DoubleOr(const std::string& key, double dflt);
  absl::StatusOr<int64_t> IntOr(const std::string& key, int64_t dflt);
  absl::StatusOr<bool> BoolOr(const std::string& key, bool dflt);
  absl::StatusOr<std::string> StringOr(const std::string& key, const std::string& dflt);

  // Nested mapping / sequence of mappings.
  absl::StatusOr<YamlReader> Map(const std::string& key);
  absl::StatusOr<std::vector<YamlReader>> MapList(const std::string& key);
  // Marks a key as known without reading it (e.g. a documented but unused seed key).
  void Ignore(const std::string& key);

  // InvalidArgument naming every key below this mapping (nested mappings and lists of
  // mappings included) that no accessor read or ignored, and any duplicated key.
  absl::Status Finish() const;

  // `path.key`, for callers that validate cross-field constraints themselves.
  std::string KeyPath(const std::string& key) const;
  absl::Status Error(const std::string& key, const std::string& what) const;

 private:
  // The node at `key`, marked as read; `required key is missing` when absent.
  absl::StatusOr<YAML::Node> Child(const std::string& key);
  // A sequence at `key` of `size` elements (any non-empty length when size < 0);
  // `what` names the element type for the error ("numbers").
  absl::StatusOr<YAML::Node> Sequence(const std::string& key, int size, const char* what);
  YamlReader Sub(YAML::Node node, std::string path) const;
  void FinishInto(const YAML::Node& node, const std::string& path,
                  std::vector<std::string>* problems) const;

  YAML::Node node_;
  std::string path_;
  // Full key paths read (or ignored) anywhere in the document; shared by sub-readers.
  std::shared_ptr<std::set<std::string>> read_;
  // Paths marked by Ignore(): Finish() does not look inside them.
  std::shared_ptr<std::set<std::string>> ignored_;
};

// Applies `key.path=value` overrides (the CLI's --set) to a YAML document; the value is
// parsed as YAML, so `--set train_params.epoches=2` and `--set a.b=[1,2]` both work.
// A segment may index a list: `postprocess.anchor_args.classes[0].l=4.2`. Only existing
// keys can be replaced: a path that is not in the document is an error naming it, so a
// misspelt override cannot silently add an unused key.
absl::Status ApplyOverride(YAML::Node& root, const std::string& assignment);

}  // namespace qv2x

#endif  // QV2X_CORE_CONFIG_YAML_READER_H_
